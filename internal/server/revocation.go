package server

import (
	"context"
	"time"

	"github.com/herald-gw/herald"
	"github.com/herald-gw/herald/internal/auth"
)

// watchRevocations ends this node's sessions whose credential is revoked
// on any node (a key or user deleted, a key's subscribe scope removed, an
// org deleted), until ctx is done. Each time the watch is (re)established
// every credential the sessions hold is checked again, for what was
// revoked while it was down.
func (s *Server) watchRevocations(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.engine.WatchRevocations(ctx, s.revoke, func() { s.recheckCredentials(ctx) })
		if ctx.Err() != nil {
			return
		}
		s.logger.Warn("revocation watch failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// revoke ends the node's sessions of r.
func (s *Server) revoke(r herald.Revocation) {
	if n := s.node.Credentials.Revoke(r); n > 0 {
		s.logger.Info("credential revoked: connections closed", "org", r.Org, "credential", redactCredential(r.Credential), "connections", n)
	}
}

// recheckCredentials revokes every credential held by a session that is
// no longer valid. One that cannot be checked now stays.
func (s *Server) recheckCredentials(ctx context.Context) {
	for _, r := range s.node.Credentials.Held() {
		valid, err := s.credentialValid(ctx, r)
		if err == nil && !valid {
			s.revoke(r)
		}
	}
}

// credentialValid checks r's credential, or for an org alone the org.
func (s *Server) credentialValid(ctx context.Context, r herald.Revocation) (bool, error) {
	if r.Credential != "" {
		return auth.CheckCredential(ctx, s.engine, r.Org, r.Credential)
	}
	_, err := s.engine.Org(ctx, r.Org)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// redactCredential shortens an API key's hash for logs.
func redactCredential(cred string) string {
	if len(cred) > 16 && cred[:4] == "key:" {
		return cred[:16] + "…"
	}
	return cred
}
