package config

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestTaskIdentity(t *testing.T) {
	tests := map[string]struct {
		extra, want, err string
	}{
		"glue's (default)":  {extra: "clearml: {credentialsSecret: glue}\n", want: TaskIdentityGlue},
		"task credentials":  {extra: "clearml: {credentialsSecret: glue, taskCredentialsSecret: tasks}\n", want: TaskIdentityTask},
		"owner token":       {extra: "useOwnerToken: true\nclearml: {credentialsSecret: glue}\n", want: TaskIdentityOwner},
		"both":              {extra: "useOwnerToken: true\nclearml: {taskCredentialsSecret: tasks}\n", err: "clearml.taskCredentialsSecret: Forbidden: useOwnerToken gives task pods their owner's token only: set one of them"},
		"the glue's Secret": {extra: "clearml: {credentialsSecret: glue, taskCredentialsSecret: glue}\n", err: `clearml.taskCredentialsSecret: Invalid value: "glue": is the glue's own credentials Secret: task pods would act as the glue`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := Parse([]byte("namespace: ml\nqueue: default-q\n"+tc.extra), "test")
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, f.TaskIdentity(), tc.want)
		})
	}
}
