package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// poster POSTs events to an HTTP endpoint (a webhook, Slack), one request
// per event, retrying with backoff; after Retries failed attempts the
// event goes to the dead-letter file and the monitor goes on.
type poster struct {
	kind      string
	url       string
	cfg       Config
	body      func(*enriched) []byte
	wants     func(*enriched) bool // nil: every event
	hc        *http.Client
	limit     *rate.Limiter // nil: no limit
	onFailure func(error)   // an event dead-lettered
}

func newPoster(kind, url string, cfg Config, body func(*enriched) []byte, wants func(*enriched) bool) *poster {
	p := &poster{kind: kind, url: url, cfg: cfg, body: body, wants: wants, hc: &http.Client{Timeout: 10 * time.Second}}
	if kind == "slack" {
		p.limit = rate.NewLimiter(rate.Every(cfg.SlackEvery), 1)
	}
	return p
}

func (p *poster) name() string { return p.kind }
func (p *poster) close() error { return nil }

func (p *poster) write(ctx context.Context, batch []enriched) error {
	for i := range batch {
		e := &batch[i]
		if p.wants != nil && !p.wants(e) {
			continue
		}
		if err := p.post(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// post delivers one event or dead-letters it; it fails only when ctx
// ends or the dead-letter file cannot be written.
func (p *poster) post(ctx context.Context, e *enriched) error {
	body := p.body(e)
	var last error
	attempt := 1
	for ; attempt <= p.cfg.Retries; attempt++ {
		if p.limit != nil {
			if err := p.limit.Wait(ctx); err != nil {
				return err
			}
		}
		retryAfter, refused, err := p.try(ctx, e, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
		if attempt == p.cfg.Retries || refused {
			break
		}
		t := time.NewTimer(min(max(retryAfter, jitter(backoff(p.cfg.Backoff, attempt))), maxBackoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	tried := min(attempt, p.cfg.Retries)
	if p.onFailure != nil {
		p.onFailure(fmt.Errorf("event %d sent to %s after %d attempts: %v", e.ID, p.cfg.DeadLetter, tried, last))
	}
	return p.deadLetter(e, last, tried)
}

// try makes one attempt; retryAfter is the server's Retry-After, and
// refused is true for a 4xx answer that a retry would get again.
func (p *poster) try(ctx context.Context, e *enriched, body []byte) (retryAfter time.Duration, refused bool, err error) {
	req, err := http.NewRequestWithContext(ctx, "POST", p.url, bytes.NewReader(body))
	if err != nil {
		return 0, true, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Herald-Event-Id", strconv.FormatUint(e.ID, 10))
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return 0, false, nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retryAfter = time.Duration(s) * time.Second
	}
	refused = status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
	return retryAfter, refused, fmt.Errorf("%s answered %d %s", p.url, status, strings.TrimSpace(string(answer)))
}

// deadLetter appends the event and why it failed to the dead-letter file,
// one JSON object per line, synced.
func (p *poster) deadLetter(e *enriched, cause error, attempts int) error {
	line, _ := json.Marshal(map[string]any{"sink": p.kind, "url": p.url, "eventId": strconv.FormatUint(e.ID, 10),
		"attempts": attempts, "error": cause.Error(), "time": time.Now().UTC().Format(time.RFC3339Nano),
		"event": json.RawMessage(withDeviceName(e))})
	f, err := os.OpenFile(p.cfg.DeadLetter, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	return nil
}

// maxBackoff caps the delay between attempts, a Retry-After included.
const maxBackoff = time.Minute

// backoff is the delay after the attempt-th failure: first doubled after
// each, up to maxBackoff.
func backoff(first time.Duration, attempt int) time.Duration {
	return min(min(first, maxBackoff)<<min(attempt-1, 16), maxBackoff)
}

func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// webhookBody is the canonical event, with deviceName.
func webhookBody(e *enriched) []byte { return withDeviceName(e) }

func isSlackAlert(e *enriched) bool { return e.IsAlert() }

// slackBody is seed 001's Slack message for an alert, with the camera's
// name when it is known.
func slackBody(e *enriched) []byte {
	text := ":rotating_light: *Security Alert*\nTriggers: " + strings.Join(e.Triggers, ", ") + "\n" +
		orDefault(e.Description, "No description")
	if e.DeviceName != "" {
		text += "\n" + strings.ToUpper(orDefault(e.DeviceKind, "device")[:1]) + orDefault(e.DeviceKind, "device")[1:] + ": " + e.DeviceName
	}
	b, _ := json.Marshal(map[string]string{"text": text})
	return b
}
