package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-gw/herald/client"
)

// adminCall sends an admin API request with the admin key and decodes
// the answer into out (if not nil); it fails the test on a status other
// than want.
func adminCall(t *testing.T, base, method, path string, body, out any, want int) {
	t.Helper()
	var reader io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		reader = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, base+path, reader)
	req.Header.Set("x-auth-apikey", keyAdmin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

// dropWatch is a Stream whose first disconnect is timed.
type dropWatch struct {
	name    string
	stream  *client.Stream
	mu      sync.Mutex
	dropped time.Time // the first disconnect after armed
	err     error
	armed   bool
}

func (w *dropWatch) status(st client.Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !st.Connected && w.armed && w.dropped.IsZero() {
		w.dropped, w.err = time.Now(), st.Err
	}
}

func (w *dropWatch) arm() { w.mu.Lock(); w.armed = true; w.mu.Unlock() }

func (w *dropWatch) droppedAt() (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped, w.err
}

// TestClusterRevocation: an API key and a user, created through the
// admin API on node A, hold live connections of every dialect on both
// nodes. Deleting the key (then the user) through node A closes every one
// of its connections on both nodes within a second, and both nodes
// refuse the credential from then on, including a token already issued
// for it.
func TestClusterRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	cluster := startNATSCluster(t)
	a := startHeraldOn(t, cluster, clusterConfig)
	b := startHeraldOn(t, cluster, clusterConfig)
	nodes := map[string]string{"A": "http://" + a.addr, "B": "http://" + b.addr}

	var key struct{ ID, Key string }
	adminCall(t, nodes["A"], "POST", "/api/admin/orgs/"+orgA+"/keys", map[string]any{"name": "doomed", "scopes": []string{"subscribe"}}, &key, http.StatusCreated)
	adminCall(t, nodes["A"], "POST", "/api/admin/orgs/"+orgA+"/users", map[string]any{"name": "doomed-user", "password": "doomed-pw"}, nil, http.StatusCreated)

	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	dial := func(node string, d client.Dialect, opts ...client.Option) *dropWatch {
		t.Helper()
		w := &dropWatch{name: fmt.Sprintf("%s on node %s", d, node)}
		s, err := client.Dial(ctx, "ws"+strings.TrimPrefix(nodes[node], "http"), append([]client.Option{
			client.WithDialect(d), client.OnStatus(w.status), client.WithBackoff(50*time.Millisecond, 500*time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		t.Cleanup(func() { s.Close() })
		w.stream = s
		return w
	}
	keyOpts := map[client.Dialect][]client.Option{
		client.STOMP:    {client.WithAPIKey(key.Key)},
		client.Channels: {client.WithPassword("any", key.Key)}, // an API key is a password at the token endpoint
		client.ESS:      {client.WithAPIKey(key.Key)},
		client.Streams:  {client.WithAPIKey(key.Key), client.WithCompany("acme")},
	}
	userOpts := map[client.Dialect][]client.Option{
		client.Channels: {client.WithPassword("doomed-user", "doomed-pw")},
		client.ESS:      {client.WithPassword("doomed-user", "doomed-pw")},
		client.Streams:  {client.WithPassword("doomed-user", "doomed-pw"), client.WithCompany("acme")},
	}
	var keyed, usered, bystanders []*dropWatch
	for _, node := range []string{"A", "B"} {
		for d, opts := range keyOpts {
			keyed = append(keyed, dial(node, d, opts...))
		}
		for d, opts := range userOpts {
			usered = append(usered, dial(node, d, opts...))
		}
		for d, opts := range clusterDialects {
			bystanders = append(bystanders, dial(node, d, opts...))
		}
	}
	userToken := tokenFor(t, nodes["B"], "doomed-user", "doomed-pw")

	// Every connection is served: an event reaches them all.
	pub := &clusterPublisher{base: nodes["A"]}
	pub.run(1, 1, 1)
	for _, w := range append(append(append([]*dropWatch{}, keyed...), usered...), bystanders...) {
		next, cancel := context.WithTimeout(ctx, time.Minute)
		e, err := w.stream.Next(next)
		cancel()
		if err != nil || e.ID != pub.acked[0] {
			t.Fatalf("%s: %v %v, want event %d", w.name, e, err, pub.acked[0])
		}
		w.stream.Ack(e.ID)
		w.arm()
	}

	revoke := func(what, path string, watches []*dropWatch) {
		t.Helper()
		sent := time.Now()
		adminCall(t, nodes["A"], "DELETE", path, nil, nil, http.StatusNoContent)
		answered := time.Since(sent)
		var slowest time.Duration
		for _, w := range watches {
			waitFor(t, 10*time.Second, w.name+" closed after "+what, func() bool { at, _ := w.droppedAt(); return !at.IsZero() })
			at, err := w.droppedAt()
			took := at.Sub(sent)
			slowest = max(slowest, took)
			if took > answered+time.Second {
				t.Errorf("%s closed %v after the DELETE was sent (answered in %v), want within 1s of the answer", w.name, took, answered)
			}
			t.Logf("%s: closed %v after the DELETE was sent (%v)", w.name, took.Round(time.Millisecond), err)
		}
		t.Logf("%s: %d connections on 2 nodes closed, the slowest %v after the DELETE was sent (it answered in %v)",
			what, len(watches), slowest.Round(time.Millisecond), answered.Round(time.Millisecond))
	}
	revoke("the key was deleted", "/api/admin/orgs/"+orgA+"/keys/"+key.ID, keyed)
	revoke("the user was deleted", "/api/admin/orgs/"+orgA+"/users/doomed-user", usered)

	// Refused everywhere from now on: the key, the user's password and
	// the token already issued to the user.
	for node, base := range nodes {
		if status := stompUpgradeStatus(t, base, key.Key); status != http.StatusUnauthorized {
			t.Errorf("node %s: STOMP with the deleted key: %d, want 401", node, status)
		}
		form := url.Values{"grant_type": {"password"}, "username": {"doomed-user"}, "password": {"doomed-pw"}}
		resp, err := http.PostForm(base+"/API/IDP/connect/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("node %s: token for the deleted user: %d, want 400", node, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", base+"/api/rest/v1/eventTypes", nil)
		req.Header.Set("Authorization", "Bearer "+userToken)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "token_revoked") {
			t.Errorf("node %s: the deleted user's token: %d %s, want 401 token_revoked", node, resp.StatusCode, body)
		}
	}
	for _, w := range bystanders {
		if at, err := w.droppedAt(); !at.IsZero() {
			t.Errorf("%s, of another credential, was closed too: %v", w.name, err)
		}
	}
}

// tokenFor gets a token at the token endpoint with the password grant.
func tokenFor(t *testing.T, base, user, password string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/API/IDP/connect/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token for %s: %d %v", user, resp.StatusCode, err)
	}
	return out.AccessToken
}

// stompUpgradeStatus is the status of a STOMP WebSocket upgrade with key.
func stompUpgradeStatus(t *testing.T, base, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/websocket", nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "x-auth-apikey": key} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
