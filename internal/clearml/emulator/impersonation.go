package emulator

import (
	"net/http"
	"slices"
)

// Roles of the server (apiserver/database/model/auth.py Role).
const (
	roleSystem = "system"
	roleRoot   = "root"
	roleAdmin  = "admin"
	roleUser   = "user"
)

// apiKey is one access key: its secret and the user it logs in as.
type apiKey struct{ secret, user string }

// Credentials is an access key of a user of the emulator (AddCredentials).
type Credentials struct {
	AccessKey, SecretKey string
	// User is the id of the user the key logs in as (an AddUser id or Options.UserID).
	User string
}

// AddCredentials adds an access key for an existing user, so a test can call as that user (a
// task owner, or a second key of another role). It panics on an unknown user: a test mistake.
func (s *Server) AddCredentials(c Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[c.User]; !ok {
		panic("emulator: AddCredentials for unknown user " + c.User)
	}
	s.keys[c.AccessKey] = apiKey{secret: c.SecretKey, user: c.User}
}

// headerValue reads an X-Clearml-<name> header or its legacy X-Trains-<name> form, like the
// server's APICall._get_headers.
func headerValue(h http.Header, name string) string {
	if v := h.Get("X-Clearml-" + name); v != "" {
		return v
	}
	return h.Get("X-Trains-" + name)
}

func errImpersonation(extra string, kv ...any) *apiError {
	return newError(400, 6, "Impersonation error", extra, kv...)
}

// impersonate applies X-Clearml-Impersonate-As and, on a multi-tenant emulator,
// X-Clearml-Tenant to an authorized caller, as the server's validate_impersonation does: only
// the admin, root and system roles may impersonate (400/6 "impersonation not allowed"
// otherwise); an admin reaches users of its own company only, root and system any user
// (400/6 "unknown user" otherwise). The call then acts as that user, with the user's own role
// and company. X-Clearml-Act-As (acting with one's own role) is not emulated.
func (s *Server) impersonate(caller identity, h http.Header) (identity, *apiError) {
	id := caller
	if target := headerValue(h, "Impersonate-As"); target != "" {
		if !slices.Contains([]string{roleSystem, roleRoot, roleAdmin}, caller.Role) {
			return identity{}, errImpersonation("impersonation not allowed", "role", caller.Role)
		}
		u, ok := s.users[target]
		if caller.Role == roleAdmin && ok && u.Company != caller.Company {
			ok = false
		}
		if !ok {
			if caller.Role == roleAdmin {
				return identity{}, errImpersonation("unknown user", "id", target, "company", caller.Company)
			}
			return identity{}, errImpersonation("unknown user", "id", target)
		}
		id = s.identityOf(u, u.Company)
		id.UserName = u.Name + " (impersonated by " + caller.UserName + ")"
	}
	if tenant := headerValue(h, "Tenant"); s.opts.Tenants && tenant != "" && tenant != id.Company {
		u, ok := s.users[id.User]
		if !ok || !slices.Contains(u.Tenants, tenant) {
			return identity{}, errImpersonation("unknown tenant for user", "user", id.User, "tenant", tenant)
		}
		name := id.UserName
		id = s.identityOf(u, tenant)
		id.UserName = name
	}
	return id, nil
}
