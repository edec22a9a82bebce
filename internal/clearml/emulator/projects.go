package emulator

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Project is an emulated project; Server.Project returns copies. A nested project is named
// "parent/child"; its Basename is the last part.
type Project struct {
	ID, Name, Basename, Description, User, Company string
	DefaultOutputDestination                       string
	// Parent is the id of the enclosing project ("" at the top level); Path holds the ids of
	// all enclosing projects, outermost first.
	Parent              string
	Path                []string
	Tags, SystemTags    []string
	Created, LastUpdate time.Time
}

func (p *Project) clone() Project {
	c := *p
	c.Path, c.Tags, c.SystemTags = slices.Clone(p.Path), slices.Clone(p.Tags), slices.Clone(p.SystemTags)
	return c
}

// doc is the project as the API shows it; withPath adds the ancestors, which projects.get_by_id
// shows and projects.get_all leaves out (excluded by default).
func (p *Project) doc(withPath bool) map[string]any {
	d := map[string]any{
		"id":          p.ID,
		"name":        p.Name,
		"basename":    p.Basename,
		"description": p.Description,
		"user":        p.User,
		"company":     p.Company,
		"created":     wireTime(p.Created),
		"last_update": wireTime(p.LastUpdate),
		"tags":        nonNil(p.Tags),
		"system_tags": nonNil(p.SystemTags),
		"featured":    9999, // the server's default UI ordering weight
	}
	if p.DefaultOutputDestination != "" {
		d["default_output_destination"] = p.DefaultOutputDestination
	}
	if p.Parent != "" {
		d["parent"] = p.Parent
	}
	if withPath {
		d["path"] = nonNil(p.Path)
	}
	return d
}

// Project naming rules of the server (services.projects.sub_projects.max_depth, and the
// Project document's minimum name length, checked on the last part of the name).
const (
	maxProjectDepth      = 10
	minProjectNameLength = 3
)

func errInvalidProjectID(id string) *apiError {
	return newError(400, 401, "Invalid project id", "", "id", id)
}

func (s *Server) projectByName(name string) *Project {
	for _, id := range s.projectOrder {
		if p := s.projects[id]; p.Name == name {
			return p
		}
	}
	return nil
}

// projectSpec is what projects.create takes besides the name.
type projectSpec struct {
	Description              string   `json:"description"`
	Tags                     []string `json:"tags"`
	SystemTags               []string `json:"system_tags"`
	DefaultOutputDestination string   `json:"default_output_destination"`
}

// createProject is projects.create: the name is cleaned ("a//b " becomes "a/b"), must be new
// in the company (400/801), its last part at least 3 characters long (400/12); missing
// enclosing projects are created on the way, as the server does.
func (s *Server) createProject(c *call, rawName string, spec projectSpec) (*Project, *apiError) {
	parts := projectNameParts(rawName)
	if len(parts) > maxProjectDepth {
		return nil, newError(400, 409, "Project path exceed the maximum allowed depth", "", "max_depth", maxProjectDepth)
	}
	if len(parts) == 0 {
		return nil, newError(400, 407, "Invalid project name", "", "name", rawName)
	}
	name := strings.Join(parts, "/")
	if s.projectByName(name) != nil {
		return nil, newError(400, 801, "Project with the same name already exists", "", "name", name, "company", c.identity.Company)
	}
	return s.addProject(c, parts, spec)
}

// projectNameParts splits a project name as the server does: empty parts are dropped, the
// others stripped of surrounding white space.
func projectNameParts(name string) []string {
	var parts []string
	for _, part := range strings.Split(name, "/") {
		if part != "" {
			parts = append(parts, strings.TrimSpace(part))
		}
	}
	return parts
}

// ensureProject returns the project named by parts, creating it and its enclosing projects
// when missing; no parts is the top level (nil).
func (s *Server) ensureProject(c *call, parts []string) (*Project, *apiError) {
	if len(parts) == 0 {
		return nil, nil
	}
	if p := s.projectByName(strings.Join(parts, "/")); p != nil {
		return p, nil
	}
	return s.addProject(c, parts, projectSpec{})
}

// addProject stores a new project under its (possibly new) parent.
func (s *Server) addProject(c *call, parts []string, spec projectSpec) (*Project, *apiError) {
	basename := parts[len(parts)-1]
	if utf8.RuneCountInString(basename) < minProjectNameLength {
		return nil, errValidation("Project name cannot be blank")
	}
	parent, aerr := s.ensureProject(c, parts[:len(parts)-1])
	if aerr != nil {
		return nil, aerr
	}
	p := &Project{ID: newID(), Name: strings.Join(parts, "/"), Basename: basename, Description: spec.Description,
		User: c.identity.User, Company: c.identity.Company, DefaultOutputDestination: spec.DefaultOutputDestination,
		Tags: slices.Clone(spec.Tags), SystemTags: slices.Clone(spec.SystemTags), Created: c.now, LastUpdate: c.now}
	if parent != nil {
		p.Parent = parent.ID
		p.Path = append(slices.Clone(parent.Path), parent.ID)
		parent.LastUpdate = c.now
	}
	s.projects[p.ID] = p
	s.projectOrder = append(s.projectOrder, p.ID)
	return p, nil
}

func projectsCreate(s *Server, c *call) (any, *apiError) {
	if c.data["name"] == nil {
		// projects.create checks its required fields by name before anything else.
		return nil, newError(400, 11, "Missing required fields", "", "missing", []string{"name"})
	}
	req, aerr := decode[struct {
		Name string `json:"name"`
		projectSpec
	}](c)
	if aerr != nil {
		return nil, aerr
	}
	p, aerr := s.createProject(c, req.Name, req.projectSpec)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"id": p.ID}, nil
}

func projectsGetByID(s *Server, c *call) (any, *apiError) {
	req, aerr := decode[struct {
		Project string `json:"project"`
	}](c, "project")
	if aerr != nil {
		return nil, aerr
	}
	p, ok := s.projects[req.Project]
	if !ok || p.Company != c.identity.Company {
		return nil, errInvalidProjectID(req.Project)
	}
	return map[string]any{"project": p.doc(true)}, nil
}

func projectsGetAll(s *Server, c *call) (any, *apiError) {
	pg, aerr := s.newPager(c)
	if aerr != nil {
		return nil, aerr
	}
	req, aerr := decode[struct {
		ID            stringList `json:"id"`
		Name          string     `json:"name"`
		Basename      string     `json:"basename"`
		Parent        stringList `json:"parent"`
		ShallowSearch bool       `json:"shallow_search"`
		Tags          []string   `json:"tags"`
		SystemTags    []string   `json:"system_tags"`
		OnlyFields    []string   `json:"only_fields"`
		SearchHidden  bool       `json:"search_hidden"`
	}](c)
	if aerr != nil {
		return nil, aerr
	}
	nameRE, aerr := compileName(req.Name)
	if aerr != nil {
		return nil, aerr
	}
	basenameRE, aerr := compileName(req.Basename)
	if aerr != nil {
		return nil, aerr
	}
	ids := idSet(req.ID)
	var matches []*Project
	for _, id := range s.projectOrder {
		p := s.projects[id]
		switch {
		case p.Company != c.identity.Company,
			ids != nil && !ids[p.ID],
			nameRE != nil && !nameRE.MatchString(p.Name),
			basenameRE != nil && !basenameRE.MatchString(p.Basename),
			!projectUnder(p, req.Parent, req.ShallowSearch),
			!tagsMatch(p.Tags, req.Tags) || !tagsMatch(p.SystemTags, req.SystemTags),
			!req.SearchHidden && ids == nil && slices.Contains(p.SystemTags, "hidden"):
			continue
		}
		matches = append(matches, p)
	}
	return s.listAnswer(c, pg, "projects", len(matches), func(i int) map[string]any {
		return project(matches[i].doc(false), req.OnlyFields)
	}), nil
}

// projectUnder applies the parent filter of projects.get_all: projects anywhere below one of
// the parents, or only their direct children with shallow_search (which without parents
// means the top-level projects).
func projectUnder(p *Project, parents []string, shallow bool) bool {
	switch {
	case shallow && len(parents) == 0:
		return p.Parent == ""
	case shallow:
		return slices.Contains(parents, p.Parent)
	case len(parents) == 0:
		return true
	}
	return slices.ContainsFunc(p.Path, func(id string) bool { return slices.Contains(parents, id) })
}

// CreateProject creates a project (and its missing enclosing projects, for a name such as
// "team/vision") as the emulator's user, or returns the id of the project that has this name.
func (s *Server) CreateProject(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.projectByName(strings.Join(projectNameParts(name), "/")); p != nil {
		return p.ID, nil
	}
	p, aerr := s.createProject(s.hookCall(), name, projectSpec{})
	if aerr != nil {
		return "", fmt.Errorf("emulator: project %q: %w", name, aerr)
	}
	return p.ID, nil
}

// Project returns a copy of a project.
func (s *Server) Project(id string) (Project, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[id]
	if !ok {
		return Project{}, false
	}
	return p.clone(), true
}
