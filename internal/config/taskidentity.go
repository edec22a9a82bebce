package config

import "k8s.io/apimachinery/pkg/util/validation/field"

// Task identities: what a task pod acts as on the ClearML server.
const (
	// TaskIdentityGlue: the glue's own credentials (the open-source chart's behaviour).
	TaskIdentityGlue = "glue"
	// TaskIdentityTask: credentials of their own (ClearMLRefs.TaskCredentialsSecret).
	TaskIdentityTask = "task"
	// TaskIdentityOwner: a token of each task's owner (UseOwnerToken).
	TaskIdentityOwner = "owner"
)

// TaskIdentity says what task pods act as on the ClearML server.
func (f *File) TaskIdentity() string {
	switch {
	case f.UseOwnerToken:
		return TaskIdentityOwner
	case f.ClearML.TaskCredentialsSecret != "":
		return TaskIdentityTask
	}
	return TaskIdentityGlue
}

// GlueIdentityWarning is what the glue logs at start and on a reload while task pods carry its
// own identity.
const GlueIdentityWarning = "task pods carry the glue's own ClearML credentials: any task can read them and act as the glue " +
	"(pull, fail or abort any task it can see); set clearml.taskCredentials (a key with only the rights tasks need) " +
	"or agentk8sglue.useOwnerToken (each task runs as its owner)"

func (f *File) validateTaskIdentity() field.ErrorList {
	var errs field.ErrorList
	task := field.NewPath("clearml", "taskCredentialsSecret")
	if f.UseOwnerToken && f.ClearML.TaskCredentialsSecret != "" {
		errs = append(errs, field.Forbidden(task, "useOwnerToken gives task pods their owner's token only: set one of them"))
	}
	if s := f.ClearML.TaskCredentialsSecret; s != "" && s == f.ClearML.CredentialsSecret {
		errs = append(errs, field.Invalid(task, s, "is the glue's own credentials Secret: task pods would act as the glue"))
	}
	return errs
}
