package emulator

import "time"

// User is an emulated user. The emulator starts with one (Options.UserID), the identity of
// every call; AddUser adds owners for tasks created with TaskSpec.User.
type User struct {
	ID, Name, GivenName, FamilyName, Avatar, Company string
	Created                                          time.Time
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

// AddUser adds (or replaces) a user of the emulator's company and returns its id; a missing ID
// is generated, a zero Created is now.
func (s *Server) AddUser(u User) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		u.ID = newID()
	}
	u.Company = orDefault(u.Company, s.opts.CompanyID)
	if u.Created.IsZero() {
		u.Created = s.opts.Now()
	}
	s.users[u.ID] = &u
	return u.ID
}
