package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Defaults of Options.
const (
	DefaultAccessKey     = "EMULATORACCESSKEY"
	DefaultSecretKey     = "emulator-secret-key"
	DefaultTokenLifetime = 30 * 24 * time.Hour
	ServerVersion        = "2.3.0"
)

// Options configures a Server. Zero values take defaults.
type Options struct {
	// AccessKey and SecretKey are the credentials of the emulator's user (AddCredentials adds
	// keys of other users).
	AccessKey, SecretKey string
	// The user and company every call with AccessKey acts as. UserGivenName and UserFamilyName
	// default to the words of UserName (users.get_by_id).
	UserID, UserName, CompanyID, CompanyName string
	UserGivenName, UserFamilyName            string
	// Role of the emulator's user (default "user"). "admin" may impersonate users of its company
	// and "root" or "system" any user (X-Clearml-Impersonate-As), as the server allows; a glue
	// running with --use-owner-token needs one of them (docs/clearml-protocol.md, "Owner tokens").
	Role string
	// Tenants makes the emulator an Enterprise multi-tenant server: tokens carry a tenant claim
	// (the identity's company) and X-Clearml-Tenant moves a call to another company the user
	// belongs to (User.Tenants).
	Tenants bool
	// TokenLifetime of issued tokens when the login does not ask (default 30 days, like the server).
	TokenLifetime time.Duration
	// StripPrefix is removed from request paths (the server's apiserver.request.strip_prefix).
	StripPrefix string
	// HiddenQueueTags hide queues from queues.get_all (default [k8s-glue]).
	HiddenQueueTags []string
	// MaxPageSize is the largest page, and the default one, of every *.get_all answer
	// (default DefaultMaxPageSize, the server's services._mongo.max_page_size).
	MaxPageSize int
	// Now is the emulator's clock (token expiry, worker activity, timestamps); default time.Now.
	Now func() time.Time
	// Logger gets one line per call; default: discard.
	Logger *slog.Logger
}

// Server is an emulated ClearML API server; it is an http.Handler and safe for concurrent use.
type Server struct {
	opts      Options
	uid       string // server.info uid
	tokenKey  []byte
	endpoints map[string]endpoint
	url       string
	log       *slog.Logger

	mu            sync.Mutex
	tasks         map[string]*Task
	taskOrder     []string
	queues        map[string]*queue
	queueOrder    []string
	projects      map[string]*Project
	projectOrder  []string
	users         map[string]*User
	scrolls       map[string]*scrollState
	workers       map[string]*Worker
	events        map[string][]logEvent
	calls         map[string]int
	faults        []*Fault
	outageUntil   time.Time
	outageStatus  int
	tokenLifetime time.Duration
	sessions      map[string]bool        // issued session id -> revoked
	verified      map[string]tokenClaims // tokens whose signature and payload were checked
	keys          map[string]apiKey      // access key -> secret and user
	companies     map[string]string      // company id -> name
}

// identity is who a call acts as (the JWT identity claim).
type identity struct {
	User        string `json:"user"`
	Company     string `json:"company"`
	Role        string `json:"role"`
	UserName    string `json:"user_name"`
	CompanyName string `json:"company_name"`
}

// call is one request being served.
type call struct {
	endpoint  string
	version   version
	identity  identity
	worker    string // X-ClearML-Worker
	remote    string
	data      map[string]any
	batch     []map[string]any
	now       time.Time
	setCookie string
}

type endpoint struct {
	minVersion version
	noAuth     bool
	handle     func(s *Server, c *call) (any, *apiError)
}

// New returns an emulator with no queues or tasks.
func New(opts Options) *Server {
	defaults := map[*string]string{
		&opts.AccessKey: DefaultAccessKey, &opts.SecretKey: DefaultSecretKey,
		&opts.UserID: "e6b4a7c0d7e14c6f9a3b2f5d8c1e0a42", &opts.UserName: "Emulator User",
		&opts.CompanyID: "d1bd92a3b039400cbafc60a7a5b1e52b", &opts.CompanyName: "emulator",
	}
	for field, value := range defaults {
		if *field == "" {
			*field = value
		}
	}
	if opts.Role == "" {
		opts.Role = roleUser
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.HiddenQueueTags == nil {
		opts.HiddenQueueTags = []string{"k8s-glue"}
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = DefaultMaxPageSize
	}
	if opts.UserGivenName == "" && opts.UserFamilyName == "" {
		opts.UserGivenName, opts.UserFamilyName, _ = strings.Cut(opts.UserName, " ")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	user := &User{ID: opts.UserID, Name: opts.UserName, GivenName: opts.UserGivenName, FamilyName: opts.UserFamilyName,
		Company: opts.CompanyID, Role: opts.Role, Created: opts.Now()}
	return &Server{
		opts:          opts,
		uid:           newID(),
		tokenKey:      key,
		endpoints:     endpointTable(),
		log:           opts.Logger.With("component", "clearml-emulator"),
		tasks:         map[string]*Task{},
		queues:        map[string]*queue{},
		projects:      map[string]*Project{},
		users:         map[string]*User{user.ID: user},
		scrolls:       map[string]*scrollState{},
		workers:       map[string]*Worker{},
		events:        map[string][]logEvent{},
		calls:         map[string]int{},
		tokenLifetime: opts.TokenLifetime,
		sessions:      map[string]bool{},
		verified:      map[string]tokenClaims{},
		keys:          map[string]apiKey{opts.AccessKey: {secret: opts.SecretKey, user: user.ID}},
		companies:     map[string]string{opts.CompanyID: opts.CompanyName},
	}
}

// NewTestServer starts an emulator on a local port for the duration of the test.
func NewTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.mu.Lock()
	s.url = ts.URL
	s.mu.Unlock()
	return s
}

// URL is the base URL of a server started by NewTestServer or ListenAndServe.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// ListenAndServe serves on addr (host:port) until ctx ends, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.url = "http://" + ln.Addr().String()
	s.mu.Unlock()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("ClearML emulator listening", "url", "http://"+ln.Addr().String())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Calls in progress get two seconds, then every connection is closed: Shutdown counts a
	// connection that has not sent a request yet (a client's spare) as busy for five seconds,
	// the demo's whole allowance before it kills the process.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeHTTP serves one API call: path, faults, endpoint, auth, body, handler, envelope,
// in the server's order (a 404 beats a 401, which beats a bad body).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		http.Error(w, "Content encoding is not supported ("+enc+")", http.StatusUnsupportedMediaType)
		return
	}
	path := strings.TrimPrefix(r.URL.Path, s.opts.StripPrefix)
	name, ver, aerr := parsePath(path)
	c := &call{endpoint: name, version: ver, worker: r.Header.Get("X-ClearML-Worker"), remote: r.RemoteAddr}
	// Reading the body before a fault's latency lets net/http notice a client that hangs up.
	var bodyErr *apiError
	c.data, c.batch, bodyErr = loadBody(r)
	if s.injectFault(w, r, name) {
		return
	}
	var data any
	if aerr == nil {
		data, aerr = s.serve(r, c, bodyErr)
	}
	s.writeEnvelope(w, r, c, data, aerr)
	code := http.StatusOK
	if aerr != nil {
		code = aerr.code
	}
	s.log.Info("call", "endpoint", name, "code", code, "duration", time.Since(start))
}

// serve resolves the endpoint (404), authorizes (401), then reports a bad body (400), in the
// server's order, and runs the handler under the lock.
func (s *Server) serve(r *http.Request, c *call, bodyErr *apiError) (any, *apiError) {
	ep, ok := s.endpoints[c.endpoint]
	if !ok || c.version.less(ep.minVersion) {
		return nil, errNotFound(c.endpoint, c.version.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.now = s.opts.Now()
	if !ep.noAuth {
		var aerr *apiError
		if c.identity, aerr = s.authorize(c, r.Header.Get("Authorization")); aerr != nil {
			return nil, aerr
		}
		if c.identity, aerr = s.impersonate(c.identity, r.Header); aerr != nil {
			return nil, aerr
		}
	}
	if bodyErr != nil {
		return nil, bodyErr
	}
	s.expireWorkers(c.now)
	return ep.handle(s, c)
}

// envelope is the response shape of every call (docs/clearml-protocol.md, "Transport").
type envelope struct {
	Meta meta `json:"meta"`
	Data any  `json:"data"`
}

type meta struct {
	ID         string         `json:"id"`
	Trx        string         `json:"trx"`
	Endpoint   metaEndpoint   `json:"endpoint"`
	ResultCode int            `json:"result_code"`
	ResultSub  int            `json:"result_subcode"`
	ResultMsg  string         `json:"result_msg"`
	ErrorStack any            `json:"error_stack"`
	ErrorData  map[string]any `json:"error_data"`
}

type metaEndpoint struct {
	Name             string `json:"name"`
	RequestedVersion any    `json:"requested_version"`
	ActualVersion    any    `json:"actual_version"`
}

func (s *Server) writeEnvelope(w http.ResponseWriter, r *http.Request, c *call, data any, aerr *apiError) {
	m := meta{
		ID:         newID(),
		Endpoint:   metaEndpoint{Name: c.endpoint, RequestedVersion: c.version.wire(c.version)},
		ResultCode: http.StatusOK,
		ResultMsg:  "OK",
		ErrorData:  map[string]any{},
	}
	m.Trx = r.Header.Get("X-ClearML-Trx")
	if m.Trx == "" {
		m.Trx = m.ID
	}
	if ep, ok := s.endpoints[c.endpoint]; ok && (aerr == nil || aerr.code != http.StatusNotFound) {
		m.Endpoint.ActualVersion = ep.minVersion.wire(c.version)
	}
	if aerr != nil {
		m.ResultCode, m.ResultSub, m.ResultMsg, m.ErrorData = aerr.code, aerr.subcode, aerr.msg, aerr.data
		data = nil
	}
	if data == nil {
		data = map[string]any{}
	}
	body, err := json.Marshal(envelope{Meta: m, Data: data})
	if err != nil {
		body, _ = json.Marshal(envelope{Meta: meta{ID: m.ID, Trx: m.Trx, Endpoint: m.Endpoint,
			ResultCode: 500, ResultMsg: "General server error: " + err.Error(), ErrorData: map[string]any{}}, Data: map[string]any{}})
		m.ResultCode = 500
	}
	if c.setCookie != "" {
		http.SetCookie(w, &http.Cookie{Name: "clearml_token_basic", Value: c.setCookie, Path: "/", HttpOnly: true})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Server", "clearml")
	w.WriteHeader(m.ResultCode)
	_, _ = w.Write(body)
}

// newID is a 32-hex id like the server's uuid4().hex.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
