package clearml_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// currentUser is users.get_current_user: who the client's calls act as.
func currentUser(t *testing.T, c *clearml.Client) (id, role string) {
	t.Helper()
	var out struct {
		User struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"user"`
	}
	assert.NilError(t, c.Call(context.Background(), "users.get_current_user", nil, &out))
	return out.User.ID, out.User.Role
}

func TestLoginAs(t *testing.T) {
	ctx := context.Background()
	srv := emulator.NewTestServer(t, emulator.Options{Role: "admin"})
	owner := srv.AddUser(emulator.User{Name: "Ada Lovelace"})
	var logs bytes.Buffer
	glue := newClient(t, srv, func(c *clearml.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	assert.NilError(t, glue.Login(ctx))
	claims, _ := glue.Claims()
	assert.Assert(t, clearml.CanImpersonate(claims))

	company := claims.Identity.Company
	tok, err := glue.LoginAs(ctx, owner, company)
	assert.NilError(t, err)
	assert.Equal(t, tok.Claims.Identity.User, owner)
	assert.Equal(t, tok.Claims.Identity.Company, company)
	assert.Assert(t, !tok.Claims.Expires.IsZero())
	assert.Assert(t, !strings.Contains(tok.String(), tok.Token), "String never shows the token")

	// A client made from the token, as the task pod's agent is, acts as the owner.
	pod, err := clearml.New(clearml.Config{APIHost: srv.URL(), AuthToken: tok.Token})
	assert.NilError(t, err)
	id, role := currentUser(t, pod)
	assert.Equal(t, id, owner)
	assert.Equal(t, role, "user")
	// The glue's own session is untouched.
	id, _ = currentUser(t, glue)
	assert.Equal(t, id, claims.Identity.User)
	// The owner may not impersonate anyone back.
	_, err = pod.LoginAs(ctx, claims.Identity.User, "")
	assertAPIError(t, err, 400, 6)

	assert.Assert(t, !strings.Contains(logs.String(), tok.Token), "the owner's token is never logged")
}

func TestLoginAsRefused(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		role    string
		user    func(srv *emulator.Server) string
		wantMsg string
	}{
		"the glue's role may not impersonate": {role: "user",
			user:    func(srv *emulator.Server) string { return srv.AddUser(emulator.User{Name: "Ada"}) },
			wantMsg: "impersonation not allowed"},
		"an owner the glue cannot reach": {role: "admin",
			user: func(srv *emulator.Server) string {
				return srv.AddUser(emulator.User{Name: "Bob", Company: "elsewhere"})
			},
			wantMsg: "unknown user"},
		"an owner that no longer exists": {role: "admin",
			user:    func(*emulator.Server) string { return "deleted-user" },
			wantMsg: "unknown user"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := emulator.NewTestServer(t, emulator.Options{Role: tc.role})
			user := tc.user(srv)
			glue := newClient(t, srv)
			_, err := glue.LoginAs(ctx, user, "")
			assertAPIError(t, err, 400, 6)
			assert.ErrorContains(t, err, "auth.login as user "+user)
			assert.ErrorContains(t, err, tc.wantMsg)
			// A refusal is not retried: one call, plus the glue's own login.
			assert.Equal(t, srv.Calls("auth.login"), 2)
		})
	}
	t.Run("no owner", func(t *testing.T) {
		srv := emulator.NewTestServer(t, emulator.Options{Role: "admin"})
		_, err := newClient(t, srv).LoginAs(ctx, "", "")
		assert.ErrorContains(t, err, "the task has no owner")
	})
}

// TestLoginAsTenant: on a multi-tenant server the impersonated token may be for the owner's
// home tenant; a second login with X-Clearml-Tenant moves it to the task's company.
func TestLoginAsTenant(t *testing.T) {
	ctx := context.Background()
	srv := emulator.NewTestServer(t, emulator.Options{Role: "admin", Tenants: true})
	owner := srv.AddUser(emulator.User{Name: "Ada", Tenants: []string{"tenant-b"}})
	glue := newClient(t, srv)

	tok, err := glue.LoginAs(ctx, owner, "")
	assert.NilError(t, err)
	home := tok.Claims.Tenant
	assert.Assert(t, home != "")
	srv.ResetCalls()
	tok, err = glue.LoginAs(ctx, owner, home)
	assert.NilError(t, err)
	assert.Equal(t, srv.Calls("auth.login"), 1, "same tenant: one login")

	tok, err = glue.LoginAs(ctx, owner, "tenant-b")
	assert.NilError(t, err)
	assert.Equal(t, tok.Claims.Tenant, "tenant-b")
	assert.Equal(t, tok.Claims.Identity.User, owner)

	_, err = glue.LoginAs(ctx, owner, "tenant-c")
	assertAPIError(t, err, 400, 6)
	assert.ErrorContains(t, err, "as user "+owner+" in tenant tenant-c")
}

// TestAuthTokenClient: a client made from a token renews it with itself and never needs a key.
func TestAuthTokenClient(t *testing.T) {
	ctx := context.Background()
	srv, clock := newEmulator(t)
	glue := newClient(t, srv)
	// A 2 h token issued 90 minutes ago: inside its refresh window (the last hour) from the start.
	srv.SetTokenLifetime(2 * time.Hour)
	clock.Advance(-90 * time.Minute)
	var out struct {
		Token string `json:"token"`
	}
	assert.NilError(t, glue.Call(ctx, "auth.login", nil, &out))
	clock.Advance(90 * time.Minute)

	pod := newClient(t, srv, func(c *clearml.Config) { c.AccessKey, c.SecretKey, c.AuthToken = "", "", out.Token })
	claims, ok := pod.Claims()
	assert.Assert(t, ok)
	srv.ResetCalls()
	_, err := pod.QueuesGetAll(ctx, clearml.QueuesGetAllRequest{})
	assert.NilError(t, err)
	poll(t, func() bool { c, _ := pod.Claims(); return c.Expires.After(claims.Expires) })
	assert.Equal(t, srv.Calls("auth.login"), 1, "renewed once, with itself")
	id, _ := currentUser(t, pod)
	assert.Equal(t, id, claims.Identity.User)

	_, err = clearml.New(clearml.Config{APIHost: srv.URL(), AuthToken: "not-a-jwt"})
	assert.ErrorContains(t, err, "AuthToken: token is not a JWT")
	_, err = clearml.New(clearml.Config{APIHost: srv.URL()})
	assert.ErrorContains(t, err, "AccessKey and SecretKey are required")
}
