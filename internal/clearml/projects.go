package clearml

import "context"

// Project is a ClearML project. A nested project is named "parent/child"; Basename is the last
// part and Parent the id of the enclosing project.
type Project struct {
	ID                       string   `json:"id"`
	Name                     string   `json:"name,omitempty"`
	Basename                 string   `json:"basename,omitempty"`
	Description              string   `json:"description,omitempty"`
	User                     string   `json:"user,omitempty"`
	Company                  string   `json:"company,omitempty"`
	Parent                   string   `json:"parent,omitempty"`
	Created                  Time     `json:"created,omitzero"`
	LastUpdate               Time     `json:"last_update,omitzero"`
	Tags                     []string `json:"tags,omitempty"`
	SystemTags               []string `json:"system_tags,omitempty"`
	DefaultOutputDestination string   `json:"default_output_destination,omitempty"`
}

// ProjectsGetAllRequest filters projects.get_all. Name is an unanchored, case-sensitive regular
// expression on the full name; projects with the "hidden" system tag are returned only with
// SearchHidden or ID. An empty ID is no id filter at all.
type ProjectsGetAllRequest struct {
	ID           []string `json:"id,omitempty"`
	Name         string   `json:"name,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	SystemTags   []string `json:"system_tags,omitempty"`
	OnlyFields   []string `json:"only_fields,omitempty"`
	SearchHidden bool     `json:"search_hidden,omitempty"`
	// Page and PageSize ask for one page only, as in TasksGetAllRequest.
	Page     *int `json:"page,omitempty"`
	PageSize *int `json:"page_size,omitempty"`
}

func (r ProjectsGetAllRequest) ids() []string { return r.ID }
func (r ProjectsGetAllRequest) onePage() bool { return r.Page != nil || r.PageSize != nil }
func (r ProjectsGetAllRequest) withPage(ids []string, page, size int) any {
	r.ID, r.Page, r.PageSize = ids, &page, &size
	return r
}

// ProjectsGetAll returns every project that matches req, in id chunks and pages like
// TasksGetAll; with req.Page or req.PageSize set, that page only.
func (c *Client) ProjectsGetAll(ctx context.Context, req ProjectsGetAllRequest) ([]Project, error) {
	return getAll(ctx, c, "projects.get_all", "projects", req, func(p *Project) string { return p.ID })
}

// ProjectsGetByID returns a project; an unknown id is 400/401 (IsInvalidProjectID).
func (c *Client) ProjectsGetByID(ctx context.Context, projectID string) (*Project, error) {
	out, err := callFor[struct {
		Project Project `json:"project"`
	}](ctx, c, "projects.get_by_id", map[string]string{"project": projectID})
	if err != nil {
		return nil, err
	}
	return &out.Project, nil
}

// ProjectsCreateRequest creates a project. A Name such as "team/vision" creates the missing
// enclosing projects too.
type ProjectsCreateRequest struct {
	Name                     string   `json:"name"`
	Description              string   `json:"description,omitempty"`
	Tags                     []string `json:"tags,omitempty"`
	SystemTags               []string `json:"system_tags,omitempty"`
	DefaultOutputDestination string   `json:"default_output_destination,omitempty"`
}

// ProjectsCreate creates a project and returns its id: 400/801 when the name is taken, 400/12
// when its last part is shorter than 3 characters.
func (c *Client) ProjectsCreate(ctx context.Context, req ProjectsCreateRequest) (string, error) {
	out, err := callFor[struct {
		ID string `json:"id"`
	}](ctx, c, "projects.create", req)
	if err != nil {
		return "", err
	}
	return out.ID, nil
}
