package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/clearml-glue/clearml-glue/internal/clearml/emulator"
	"gotest.tools/v3/assert"
)

// tokenIdentity decodes a JWT's claims (the identity and the tenant claim).
func tokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	assert.Equal(t, len(parts), 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	assert.NilError(t, err)
	var claims map[string]any
	assert.NilError(t, json.Unmarshal(payload, &claims))
	return claims
}

func bearer(token string) string { return "Bearer " + token }

// TestImpersonation follows the server's validate_impersonation: only admin, root and system
// may impersonate, an admin only users of its company; the login then answers a token whose
// identity is the impersonated user's own, and calls made with it act as that user.
func TestImpersonation(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{Role: "admin"})
	owner := srv.AddUser(emulator.User{Name: "Ada Lovelace"})
	stranger := srv.AddUser(emulator.User{Name: "Other Company", Company: "other-company"})
	srv.AddCredentials(emulator.Credentials{AccessKey: "OWNERKEY", SecretKey: "owner-secret", User: owner})
	glue := login(t, srv, "")
	assert.Equal(t, tokenClaims(t, glue)["identity"].(map[string]any)["role"], "admin")

	ans := send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": bearer(glue), "X-Clearml-Impersonate-As": owner}})
	assert.Equal(t, ans.status, 200, ans.body)
	ownerToken := ans.data["token"].(string)
	assert.DeepEqual(t, tokenClaims(t, ownerToken)["identity"], map[string]any{
		"user": owner, "company": defaultCompanyID, "role": "user", "user_name": "Ada Lovelace", "company_name": "emulator",
	})
	_, hasTenant := tokenClaims(t, ownerToken)["tenant"]
	assert.Assert(t, !hasTenant, "the open-source server's tokens have no tenant claim")

	me := send(t, srv, request{path: "/users.get_current_user", header: map[string]string{"Authorization": bearer(ownerToken)}})
	assert.Equal(t, me.status, 200, me.body)
	user := me.data["user"].(map[string]any)
	assert.Equal(t, user["id"], owner)
	assert.Equal(t, user["role"], "user")

	// The legacy header name works too; Basic credentials impersonate as well.
	ans = send(t, srv, request{path: "/users.get_current_user", header: map[string]string{"Authorization": basic, "X-Trains-Impersonate-As": owner}})
	assert.Equal(t, ans.data["user"].(map[string]any)["id"], owner)
	assert.Equal(t, ans.data["user"].(map[string]any)["name"], "Ada Lovelace")

	tests := map[string]struct {
		auth, target string
		msg          string
	}{
		"a user may not impersonate": {auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("OWNERKEY:owner-secret")), target: defaultUserID,
			msg: "Impersonation error (impersonation not allowed): role=user"},
		"the owner's token may not either": {auth: bearer(ownerToken), target: defaultUserID,
			msg: "Impersonation error (impersonation not allowed): role=user"},
		"an admin reaches its own company only": {auth: bearer(glue), target: stranger,
			msg: "Impersonation error (unknown user): id=" + stranger + ", company=" + defaultCompanyID},
		"an unknown user": {auth: bearer(glue), target: "no-such-user",
			msg: "Impersonation error (unknown user): id=no-such-user, company=" + defaultCompanyID},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ans := send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": tc.auth, "X-Clearml-Impersonate-As": tc.target}})
			assert.Equal(t, ans.status, 400, ans.body)
			assert.Equal(t, subcode(ans), 6)
			assert.Equal(t, ans.meta["result_msg"], tc.msg)
			assert.DeepEqual(t, ans.data, map[string]any{})
		})
	}

	t.Run("without credentials the answer is 401 first", func(t *testing.T) {
		ans := send(t, srv, request{path: "/auth.login", header: map[string]string{"X-Clearml-Impersonate-As": owner}})
		assert.Equal(t, ans.status, 401)
	})
}

func TestImpersonationRoot(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{Role: "root"})
	stranger := srv.AddUser(emulator.User{Name: "Other Company", Company: "other-company"})
	ans := send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": basic, "X-Clearml-Impersonate-As": stranger}})
	assert.Equal(t, ans.status, 200, ans.body)
	id := tokenClaims(t, ans.data["token"].(string))["identity"].(map[string]any)
	assert.Equal(t, id["user"], stranger)
	assert.Equal(t, id["company"], "other-company")
}

// TestTenants: on a multi-tenant emulator tokens carry the tenant claim, and X-Clearml-Tenant
// moves a user's session to another company it belongs to.
func TestTenants(t *testing.T) {
	srv := emulator.NewTestServer(t, emulator.Options{Role: "admin", Tenants: true})
	owner := srv.AddUser(emulator.User{Name: "Ada Lovelace", Tenants: []string{"tenant-b"}})
	glue := login(t, srv, "")
	assert.Equal(t, tokenClaims(t, glue)["tenant"], defaultCompanyID)

	ans := send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": bearer(glue), "X-Clearml-Impersonate-As": owner}})
	assert.Equal(t, ans.status, 200, ans.body)
	ownerToken := ans.data["token"].(string)
	assert.Equal(t, tokenClaims(t, ownerToken)["tenant"], defaultCompanyID)

	ans = send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": bearer(ownerToken), "X-Clearml-Tenant": "tenant-b"}})
	assert.Equal(t, ans.status, 200, ans.body)
	moved := tokenClaims(t, ans.data["token"].(string))
	assert.Equal(t, moved["tenant"], "tenant-b")
	assert.Equal(t, moved["identity"].(map[string]any)["user"], owner)

	ans = send(t, srv, request{path: "/auth.login", header: map[string]string{"Authorization": bearer(ownerToken), "X-Clearml-Tenant": "tenant-c"}})
	assert.Equal(t, ans.status, 400)
	assert.Equal(t, subcode(ans), 6)
	assert.Equal(t, ans.meta["result_msg"], "Impersonation error (unknown tenant for user): user="+owner+", tenant=tenant-c")
}
