package clearml

import "context"

// User is a ClearML user as users.get_by_id returns it. Email and Role are only sent to admins.
type User struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	Avatar     string `json:"avatar,omitempty"`
	Company    string `json:"company,omitempty"`
	Created    Time   `json:"created,omitzero"`
	Email      string `json:"email,omitempty"`
	Role       string `json:"role,omitempty"`
}

// UsersGetByID returns a user of the caller's company (a task's User field holds its owner's
// id); an unknown id is 400/301 (IsInvalidUserID).
func (c *Client) UsersGetByID(ctx context.Context, userID string) (*User, error) {
	out, err := callFor[struct {
		User User `json:"user"`
	}](ctx, c, "users.get_by_id", map[string]string{"user": userID})
	if err != nil {
		return nil, err
	}
	return &out.User, nil
}
