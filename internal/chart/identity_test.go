package chart

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clearml-glue/clearml-glue/internal/config"
)

// TestTaskIdentity: what task pods act as on ClearML, per values: the glue's own credentials
// (the open-source chart's behaviour, which NOTES.txt warns about), credentials of their own, or
// each task's owner.
func TestTaskIdentity(t *testing.T) {
	tests := []struct {
		name          string
		set           []string
		identity      string
		taskSecret    string            // clearml.taskCredentialsSecret in the glue config
		secretData    map[string]string // a task credentials Secret the chart creates
		notes, notes2 string
	}{
		{name: "glue's (default)", identity: config.TaskIdentityGlue,
			notes: "NOTE: task pods carry the glue's own ClearML identity", notes2: "agentk8sglue.useOwnerToken=true"},
		{name: "task credentials", set: []string{"clearml.taskCredentials.accessKey=TASK-KEY", "clearml.taskCredentials.secretKey=task-secret"},
			identity: config.TaskIdentityTask, taskSecret: fullname + "-task-credentials",
			secretData: map[string]string{"access_key": "TASK-KEY", "secret_key": "task-secret"},
			notes:      "Task pods use their own ClearML credentials (" + fullname + "-task-credentials)"},
		{name: "existing task credentials Secret", set: []string{"clearml.taskCredentials.existingSecret=my-task-creds"},
			identity: config.TaskIdentityTask, taskSecret: "my-task-creds", notes: "(my-task-creds), not the glue's"},
		{name: "owner tokens", set: []string{"agentk8sglue.useOwnerToken=true"}, identity: config.TaskIdentityOwner,
			notes: "Task pods run as each task's owner", notes2: "the Role may create Secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := withCreds(t, tt.set...)
			cfg := glueConfig(t, r)
			if got := cfg.TaskIdentity(); got != tt.identity {
				t.Errorf("identity %q, want %q", got, tt.identity)
			}
			if cfg.ClearML.TaskCredentialsSecret != tt.taskSecret {
				t.Errorf("taskCredentialsSecret %q, want %q", cfg.ClearML.TaskCredentialsSecret, tt.taskSecret)
			}
			if cfg.ClearML.CredentialsSecret != fullname+"-credentials" {
				t.Errorf("the glue's own Secret changed: %q", cfg.ClearML.CredentialsSecret)
			}
			var secrets []string
			for _, o := range objects(t, r) {
				if o.GetKind() == "Secret" {
					secrets = append(secrets, o.GetName())
				}
			}
			want := []string{fullname + "-credentials"}
			if tt.secretData != nil {
				want = append(want, fullname+"-task-credentials")
				data := object(t, r, "Secret", fullname+"-task-credentials").Object["data"].(map[string]any)
				got := map[string]string{}
				for k, v := range data {
					b, _ := base64.StdEncoding.DecodeString(v.(string))
					got[k] = string(b)
				}
				if diff := cmp.Diff(tt.secretData, got); diff != "" {
					t.Errorf("task credentials Secret (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(want, secrets); diff != "" {
				t.Errorf("Secrets (-want +got):\n%s", diff)
			}
			for _, n := range []string{tt.notes, tt.notes2} {
				if !strings.Contains(r.Notes, n) {
					t.Errorf("NOTES.txt lacks %q:\n%s", n, r.Notes)
				}
			}
			if tt.identity != config.TaskIdentityGlue && strings.Contains(r.Notes, "carry the glue's own") {
				t.Errorf("NOTES.txt warns although task pods have their own identity:\n%s", r.Notes)
			}
		})
	}
}

// TestTaskIdentityRefused: values that would hand task pods the glue's identity anyway fail the
// install with the key to change.
func TestTaskIdentityRefused(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		set   []string
		want  string
	}{
		{name: "both modes", set: []string{"agentk8sglue.useOwnerToken=true", "clearml.taskCredentials.existingSecret=x"},
			want: "clearml.taskCredentials and agentk8sglue.useOwnerToken both say what task pods run as: set one"},
		{name: "the glue's Secret as task credentials", set: []string{"clearml.taskCredentials.existingSecret=" + fullname + "-credentials"},
			want: "clearml.taskCredentials.existingSecret names the glue's own credentials Secret"},
		{name: "the glue's key as task credentials", set: []string{"clearml.taskCredentials.accessKey=CI-ACCESS-KEY", "clearml.taskCredentials.secretKey=x"},
			want: "clearml.taskCredentials.accessKey is the glue's own key"},
		{name: "half the task credentials", set: []string{"clearml.taskCredentials.accessKey=TASK-KEY"},
			want: "clearml.taskCredentials.accessKey and clearml.taskCredentials.secretKey go together"},
		{name: "the glue's secret in clearml.conf", set: []string{"agentk8sglue.useOwnerToken=true", "clearml.clearmlConfig=api { credentials { secret_key: CI-SECRET-KEY } }"},
			want: "clearml.clearmlConfig holds the glue's own credentials (clearml.agentk8sglueSecret)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(RenderOptions{ChartDir: chartDir, ValuesFiles: []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, Set: tt.set, ReleaseName: release, Namespace: namespace})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error containing %q, got %v", tt.want, err)
			}
		})
	}
	// Without a mode of their own, task pods get the glue's credentials anyway: no refusal.
	withCreds(t, "clearml.clearmlConfig=api { credentials { secret_key: CI-SECRET-KEY } }")
}
