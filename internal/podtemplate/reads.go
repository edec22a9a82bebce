package podtemplate

import (
	"text/template/parse"
)

// collectLeaves appends the leaves of trees to out.
func collectLeaves(out []*leaf, trees ...any) []*leaf {
	for _, tree := range trees {
		switch t := tree.(type) {
		case *leaf:
			if t != nil {
				out = append(out, t)
			}
		case map[string]any:
			for _, v := range t {
				out = collectLeaves(out, v)
			}
		case []any:
			for _, v := range t {
				out = collectLeaves(out, v)
			}
		}
	}
	return out
}

// reads says whether leaves read the task's project name or its owner's user object, the data
// the glue looks up from ClearML only when a template needs it. It errs on the side of a lookup:
// a template that hands the whole data ({{ . }}, {{ $ }}) or the whole task to a function reads
// both.
func (c *compiler) reads(leaves []*leaf) (project, user bool) {
	for _, l := range leaves {
		for _, t := range l.tmpl.Templates() {
			if t.Tree == nil {
				continue
			}
			walk(t.Root, func(n parse.Node) {
				switch n := n.(type) {
				case *parse.CommandNode:
					// {{clearmlPlaceholder $ i}}: a ClearML placeholder.
					if len(n.Args) == 3 {
						if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == placeholderFunc {
							if num, ok := n.Args[2].(*parse.NumberNode); ok && num.IsInt && int(num.Int64) < len(c.placeholders) {
								switch c.placeholders[num.Int64].variable {
								case "PROJECT_NAME":
									project = true
								case "USER":
									user = true
								}
								return
							}
						}
					}
					for _, arg := range n.Args {
						p, u := readsNode(arg)
						project, user = project || p, user || u
					}
				}
			})
		}
	}
	return project, user
}

// readsNode looks at one operand of a command.
func readsNode(n parse.Node) (project, user bool) {
	var idents []string
	switch n := n.(type) {
	case *parse.DotNode:
		return true, true
	case *parse.FieldNode:
		idents = n.Ident
	case *parse.VariableNode:
		if len(n.Ident) == 1 && n.Ident[0] == "$" {
			return true, true
		}
		idents = n.Ident
		if idents[0] == "$" {
			idents = idents[1:]
		} else {
			// A variable set inside the template ({{ $t := .Task }}): its source is read where
			// it is set; its fields may still name the project.
			idents = append([]string{""}, idents[1:]...)
		}
	case *parse.ChainNode:
		for _, f := range n.Field {
			project = project || f == "ProjectName"
		}
		p, u := readsNode(n.Node)
		return project || p, u
	default:
		return false, false
	}
	for i, id := range idents {
		project = project || id == "ProjectName"
		user = user || (i == 0 && id == "User")
	}
	// The whole task handed over: {{ toJson .Task }}.
	if len(idents) == 1 && idents[0] == "Task" {
		project = true
	}
	return project, user
}

// walk calls f on n and every node under it.
func walk(n parse.Node, f func(parse.Node)) {
	if n == nil {
		return
	}
	f(n)
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, f)
		}
	case *parse.ActionNode:
		walk(n.Pipe, f)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, f)
		}
	case *parse.ChainNode:
		walk(n.Node, f)
	case *parse.IfNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.RangeNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.WithNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.TemplateNode:
		walk(n.Pipe, f)
	}
}
