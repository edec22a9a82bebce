package config

import (
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
)

// A clearml.conf as clearml-init writes it: URLs without quotes, credentials with quoted keys,
// comments, an agent section with substitutions and lists.
const initConf = `# ClearML SDK configuration file
api {
    # Notice: 'host' is the api server (default port 8008), not the web server.
    api_server: http://clearml.example.com:8008
    web_server: http://clearml.example.com:8080 # the UI
    files_server: "http://clearml.example.com:8081"
    # Credentials are generated using the webapp, http://clearml.example.com:8080/settings
    credentials {"access_key": "AK1234567890", "secret_key": "sk#with/odd+chars=\"q\"x"}
    verify_certificate: False
}
sdk {
    storage { cache { default_base_dir: "~/.clearml/cache" } }
    development { worker { report_period_sec: 2, ping_period_sec: 30, log_stdout: true } }
}
agent {
    package_manager: { type: pip, extra_index_url: [ ] }
    venvs_dir = ~/.clearml/venvs-builds
    default_docker: { image: "nvidia/cuda:12.1.0-runtime-ubuntu22.04", arguments: ["--ipc=host", ] }
    cuda_version: ${?CUDA_VERSION}
}
`

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeConf(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "clearml.conf")
	assert.NilError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestFindClearMLServerReadsClearMLConfAsClearMLWritesIt(t *testing.T) {
	home := t.TempDir()
	conf := writeConf(t, home, initConf)
	s, err := FindClearMLServer(envOf(nil), home)
	assert.NilError(t, err)
	assert.Equal(t, s.APIHost, "http://clearml.example.com:8008")
	assert.Equal(t, s.WebHost, "http://clearml.example.com:8080")
	assert.Equal(t, s.FilesHost, "http://clearml.example.com:8081")
	assert.Equal(t, s.AccessKey, "AK1234567890")
	assert.Equal(t, s.SecretKey, `sk#with/odd+chars="q"x`)
	assert.Equal(t, s.VerifyCert, false)
	assert.Equal(t, s.ConfigFile, conf)
	assert.Equal(t, s.Sources["APIHost"], conf+" api.api_server")
	assert.Equal(t, s.Sources["SecretKey"], conf+" api.credentials.secret_key")
}

func TestFindClearMLServerEnvironmentWinsValueByValue(t *testing.T) {
	home := t.TempDir()
	writeConf(t, home, initConf)
	s, err := FindClearMLServer(envOf(map[string]string{
		EnvAPIHost: "https://api.other.example", EnvAccessKey: "ENVKEY", EnvVerifyCert: "yes",
	}), home)
	assert.NilError(t, err)
	assert.Equal(t, s.APIHost, "https://api.other.example")
	assert.Equal(t, s.AccessKey, "ENVKEY")
	assert.Equal(t, s.SecretKey, `sk#with/odd+chars="q"x`) // not in the environment: from the file
	assert.Equal(t, s.VerifyCert, true)
	assert.Equal(t, s.Sources["APIHost"], EnvAPIHost)
}

func TestFindClearMLServerEnvironmentAloneNeedsNoFile(t *testing.T) {
	s, err := FindClearMLServer(envOf(map[string]string{
		EnvAPIHost: "http://api:8008", EnvAccessKey: "k", EnvSecretKey: "s",
	}), t.TempDir())
	assert.NilError(t, err)
	assert.Equal(t, s.ConfigFile, "")
	assert.Equal(t, s.VerifyCert, true)
	assert.Equal(t, s.WebHost, "")
}

func TestFindClearMLServerConfigFileVariable(t *testing.T) {
	dir := t.TempDir()
	conf := writeConf(t, dir, `api { api_server = "http://a:8008", credentials { access_key = A, secret_key = B } }`)
	s, err := FindClearMLServer(envOf(map[string]string{EnvConfigFile: conf}), t.TempDir())
	assert.NilError(t, err)
	assert.Equal(t, s.APIHost, "http://a:8008")
	assert.Equal(t, s.AccessKey, "A")

	_, err = FindClearMLServer(envOf(map[string]string{EnvConfigFile: filepath.Join(dir, "missing.conf")}), t.TempDir())
	assert.ErrorContains(t, err, "missing.conf (CLEARML_CONFIG_FILE)")
}

func TestFindClearMLServerNamesTheSourcesTried(t *testing.T) {
	home := t.TempDir()
	_, err := FindClearMLServer(envOf(nil), home)
	want := filepath.Join(home, "clearml.conf") + " (~/clearml.conf; CLEARML_CONFIG_FILE is not set): no such file"
	assert.ErrorContains(t, err, "no ClearML API server: CLEARML_API_HOST is not set and "+want+" has no api.api_server")
	assert.ErrorContains(t, err, "no ClearML credentials: CLEARML_API_ACCESS_KEY/CLEARML_API_SECRET_KEY are not set and "+want)

	writeConf(t, home, `api { api_server: http://a:8008 }`)
	_, err = FindClearMLServer(envOf(map[string]string{EnvAccessKey: "k"}), home)
	assert.ErrorContains(t, err, "no ClearML credentials")
	assert.ErrorContains(t, err, "has no api.credentials.access_key/secret_key")

	writeConf(t, home, `api { api_server: "http://a:8008" `)
	_, err = FindClearMLServer(envOf(nil), home)
	assert.ErrorContains(t, err, "not a valid HOCON file")
}

func TestPyhoconCompat(t *testing.T) {
	for in, want := range map[string]string{
		`api_server: http://a:8008`:                 `api_server: "http://a:8008"`,
		`api_server=https://a.b/c?d=1 # note`:       `api_server="https://a.b/c?d=1" `,
		`api { api_server: http://a, x: "y" }`:      `api { api_server: "http://a", x: "y" }`,
		`web_server: "http://already:8080"`:         `web_server: "http://already:8080"`,
		"# see: http://docs.example/settings\nx: 1": "\nx: 1",
		`msg: "key: http://inside/quotes # // x"`:   `msg: "key: http://inside/quotes # // x"`,
		`a: 1 // a: http://commented`:               `a: 1 `,
		`files_server: s3://bucket/path, z: 1`:      `files_server: "s3://bucket/path", z: 1`,
		`credentials {"access_key": "A", "b": "C"}`: `credentials {"access_key": "A", "b": "C"}`,
		`image: nvidia/cuda:12.1.0 # tag`:           `image: nvidia/cuda:12.1.0 `,
		`s: "a\"b # c" # d`:                         `s: "a\"b # c" `,
		"t: \"\"\"x: http://y # z\"\"\"\" # c":      "t: \"\"\"x: http://y # z\"\"\"\" ",
	} {
		assert.Equal(t, pyhoconCompat(in), want, in)
	}
}
