package emulator

import "time"

// User is an emulated user. The emulator starts with one (Options.UserID), the identity of
// calls made with Options.AccessKey; AddUser adds owners for tasks created with TaskSpec.User.
type User struct {
	ID, Name, GivenName, FamilyName, Avatar, Company string
	// Role is the user's role (default "user"); users.get_by_id does not show it, like the
	// server to a non-admin, but tokens and users.get_current_user do.
	Role string
	// Tenants are other companies the user belongs to on a multi-tenant emulator
	// (Options.Tenants), reachable with X-Clearml-Tenant.
	Tenants []string
	Created time.Time
}

// doc is the user as users.get_by_id shows it; unset names are left out like the server's
// documents.
func (u *User) doc() map[string]any {
	d := map[string]any{"id": u.ID, "name": u.Name, "company": u.Company}
	for key, value := range map[string]string{"given_name": u.GivenName, "family_name": u.FamilyName, "avatar": u.Avatar} {
		if value != "" {
			d[key] = value
		}
	}
	if !u.Created.IsZero() {
		d["created"] = wireTime(u.Created)
	}
	return d
}

// usersGetByID is users.get_by_id: a user of the caller's company, else 400/301.
func usersGetByID(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		User string `json:"user"`
	}](c, "user")
	if aerr != nil {
		return nil, aerr
	}
	u, ok := s.users[req.User]
	if !ok || u.Company != c.identity.Company {
		return nil, newError(400, 301, "Invalid user id", "", "id", req.User, "company", c.identity.Company)
	}
	return map[string]any{"user": u.doc()}, nil
}

// usersGetCurrentUser is users.get_current_user: the caller's user (the impersonated one under
// X-Clearml-Impersonate-As) with the role it acts with.
func usersGetCurrentUser(s *Server, c *call) (any, *apiError) {
	u, ok := s.users[c.identity.User]
	if !ok {
		return nil, newError(400, 300, "Invalid user", "failed loading user")
	}
	doc := u.doc()
	doc["company"] = map[string]any{"id": c.identity.Company, "name": c.identity.CompanyName}
	doc["role"] = c.identity.Role
	return map[string]any{"user": doc, "getting_started": nil,
		"settings": map[string]any{"max_download_items": 1000}}, nil
}

// AddUser adds (or replaces) a user of the emulator's company (or of u.Company) and returns its
// id; a missing ID is generated, a zero Created is now, an empty Role is "user".
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = newID()
	}
	u.Company = orDefault(u.Company, s.opts.CompanyID)
	u.Role = orDefault(u.Role, roleUser)
	if u.Created.IsZero() {
		u.Created = s.opts.Now()
	}
	s.users[u.ID] = &u
	return u.ID
}
