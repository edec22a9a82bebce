package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gurkankaymak/hocon"
)

// ClearML's environment variables, as its SDK and agent read them.
const (
	EnvAPIHost    = "CLEARML_API_HOST"
	EnvWebHost    = "CLEARML_WEB_HOST"
	EnvFilesHost  = "CLEARML_FILES_HOST"
	EnvAccessKey  = "CLEARML_API_ACCESS_KEY"
	EnvSecretKey  = "CLEARML_API_SECRET_KEY"
	EnvVerifyCert = "CLEARML_API_HOST_VERIFY_CERT"
	EnvConfigFile = "CLEARML_CONFIG_FILE"
)

// ClearMLServer is the ClearML server the glue talks to, with its credentials, found as ClearML's
// Python glue (k8s_glue_example.py) finds them: each value from its environment variable, else
// from clearml.conf.
type ClearMLServer struct {
	APIHost, WebHost, FilesHost string
	AccessKey, SecretKey        string
	VerifyCert                  bool
	// ConfigFile is the clearml.conf that was read, "" when none was.
	ConfigFile string
	// Sources says where each value came from ("CLEARML_API_HOST", "/home/me/clearml.conf
	// api.api_server"), by the names above (APIHost, ...), for the start-up log. Never values.
	Sources map[string]string
}

// FindClearMLServer looks for the server and credentials: CLEARML_API_HOST,
// CLEARML_API_ACCESS_KEY, CLEARML_API_SECRET_KEY, CLEARML_WEB_HOST, CLEARML_FILES_HOST and
// CLEARML_API_HOST_VERIFY_CERT first, then the clearml.conf named by CLEARML_CONFIG_FILE, else
// ~/clearml.conf (home), for what the environment does not give: api.api_server (or the older
// api.host), api.web_server, api.files_server, api.credentials.access_key and .secret_key,
// api.verify_certificate. The API server and both keys are required; the error names every
// source tried. getenv is os.Getenv in production.
func FindClearMLServer(getenv func(string) string, home string) (ClearMLServer, error) {
	s := ClearMLServer{VerifyCert: true, Sources: map[string]string{}}
	path, explicit := getenv(EnvConfigFile), true
	if path == "" {
		path, explicit = filepath.Join(home, "clearml.conf"), false
	}
	conf, confErr := readClearMLConf(path)
	switch {
	case confErr == nil:
		s.ConfigFile = path
	case errors.Is(confErr, fs.ErrNotExist) && !explicit:
		// No ~/clearml.conf: fine if the environment has everything.
	default:
		return s, fmt.Errorf("clearml.conf (%s): %w", describeConfPath(path, explicit), confErr)
	}
	lookup := func(field, env string, keys ...string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			s.Sources[field] = env
			return v
		}
		if conf == nil {
			return ""
		}
		for _, k := range keys {
			if v, ok := confString(conf, k); ok && v != "" {
				s.Sources[field] = path + " " + k
				return v
			}
		}
		return ""
	}
	s.APIHost = lookup("APIHost", EnvAPIHost, "api.api_server", "api.host")
	s.WebHost = lookup("WebHost", EnvWebHost, "api.web_server")
	s.FilesHost = lookup("FilesHost", EnvFilesHost, "api.files_server")
	s.AccessKey = lookup("AccessKey", EnvAccessKey, "api.credentials.access_key")
	s.SecretKey = lookup("SecretKey", EnvSecretKey, "api.credentials.secret_key")
	if v := lookup("VerifyCert", EnvVerifyCert, "api.verify_certificate"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.Sources["VerifyCert"], err)
		}
		s.VerifyCert = b
	}

	tried := describeConfPath(path, explicit)
	if conf == nil {
		tried += ": no such file"
	}
	var errs []error
	if s.APIHost == "" {
		errs = append(errs, fmt.Errorf("no ClearML API server: %s is not set and %s has no api.api_server", EnvAPIHost, tried))
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		errs = append(errs, fmt.Errorf("no ClearML credentials: %s/%s are not set and %s has no api.credentials.access_key/secret_key",
			EnvAccessKey, EnvSecretKey, tried))
	}
	return s, errors.Join(errs...)
}

func describeConfPath(path string, explicit bool) string {
	if explicit {
		return path + " (" + EnvConfigFile + ")"
	}
	return path + " (~/clearml.conf; " + EnvConfigFile + " is not set)"
}

// readClearMLConf parses a clearml.conf with a HOCON library (github.com/gurkankaymak/hocon),
// after pyhoconCompat.
func readClearMLConf(path string) (*hocon.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf, err := hocon.ParseString(pyhoconCompat(string(data)))
	if err != nil {
		return nil, fmt.Errorf("not a valid HOCON file: %w", err)
	}
	return conf, nil
}

// urlValue is a URL written without quotes, as a value: `api_server: http://localhost:8008`.
var urlValue = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*://[^\s,{}\[\]"'#]*`)

// pyhoconCompat makes a clearml.conf read by the HOCON library as ClearML reads it with pyhocon.
// It only quotes and removes, never restructures, so lines and columns in errors stay right:
//
//   - a URL value written without quotes, as clearml-init writes api_server, web_server and
//     files_server, is quoted: pyhocon takes `http://host` as a string, while the HOCON
//     specification (and so every Go library) starts a comment at "//" and reads "http:";
//   - comments are removed: the library mishandles a "#" comment holding a URL (clearml-init's
//     "# Credentials are generated using the webapp, http://.../settings") and drops the line
//     after it, the credentials.
//
// Quoted and triple-quoted strings are copied as they are.
func pyhoconCompat(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case strings.HasPrefix(src[i:], `"""`):
			end := strings.Index(src[i+3:], `"""`)
			if end < 0 {
				b.WriteString(src[i:])
				return b.String()
			}
			end += i + 6
			for end < len(src) && src[end] == '"' { // """a"""" is a" in HOCON
				end++
			}
			b.WriteString(src[i:end])
			i = end
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			b.WriteString(src[i:j])
			i = j
		case c == '#' || strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ':' || c == '=':
			b.WriteByte(c)
			i++
			j := i
			for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
				j++
			}
			if url := urlValue.FindString(src[j:]); url != "" {
				b.WriteString(src[i:j])
				b.WriteString(strconv.Quote(url))
				i = j + len(url)
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// confString returns the value at path as a string, if it is a string, number or boolean.
func confString(conf *hocon.Config, path string) (string, bool) {
	switch v := conf.Get(path).(type) {
	case hocon.String:
		return unescape(string(v)), true
	case hocon.Int, hocon.Float32, hocon.Float64, hocon.Boolean:
		return v.String(), true
	default:
		return "", false
	}
}

// unescape decodes the escapes of a quoted HOCON string (JSON's), which the library leaves as
// written; a string it keeps with its quotes loses them.
func unescape(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if !strings.Contains(s, `\`) {
		return s
	}
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

// parseBool reads a boolean as ClearML does: true/false, yes/no, on/off, 1/0, any case.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", v)
}
