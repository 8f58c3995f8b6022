package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// maxMessageBytes bounds one message from the server.
const maxMessageBytes = 16 << 20

// wsConn is a WebSocket connection with a keep-alive goroutine: it pings
// the server, and sends the dialect's heart-beat if it has one, every
// heartbeat; a ping without an answer within the heartbeat drops the
// connection, which the Stream then makes again.
type wsConn struct {
	c      *websocket.Conn
	cancel context.CancelFunc
	done   chan struct{}
}

// dialWS opens a WebSocket connection. A refused handshake is an *Error
// with the server's status and message.
func dialWS(ctx context.Context, r *rest, url string, header http.Header) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.hc.Timeout+time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: r.hc, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			}
			return nil, httpError("GET "+resp.Request.URL.Path, resp.StatusCode, body)
		}
		return nil, err
	}
	c.SetReadLimit(maxMessageBytes)
	return c, nil
}

// keepAlive starts c's keep-alive goroutine; beat, if not nil, sends the
// dialect's heart-beat.
func keepAlive(c *websocket.Conn, every time.Duration, beat func(ctx context.Context) error) *wsConn {
	ctx, cancel := context.WithCancel(context.Background())
	w := &wsConn{c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, every)
			err := c.Ping(pctx)
			if err == nil && beat != nil {
				err = beat(pctx)
			}
			pcancel()
			if err != nil {
				if ctx.Err() == nil {
					c.CloseNow()
				}
				return
			}
		}
	}()
	return w
}

// readText reads the next message.
func (w *wsConn) readText(ctx context.Context) ([]byte, error) {
	_, data, err := w.c.Read(ctx)
	return data, closeError(err)
}

func (w *wsConn) write(ctx context.Context, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return w.c.Write(ctx, websocket.MessageText, data)
}

func (w *wsConn) close() {
	w.cancel()
	w.c.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

// closeError maps the server's close frames: "events lost" (1011, 4003)
// to ErrEventsLost, the rest to an *Error with the code and reason; a
// refused credential or request is found before, in the dialect's replies.
// 1013 (Try Again Later) is never a loss, whatever its reason says: the
// server could not read its log for a while (ess and streams "catch-up
// failed", channels catch_up_failed), skipped nothing, and the Stream
// resumes from its cursor. A revoked credential (1008 "unauthorized: …"
// in ess and streams, 4001 "credential revoked" in channels) is permanent.
func closeError(err error) error {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return err
	}
	if ce.Code != websocket.StatusTryAgainLater &&
		(strings.Contains(strings.ToLower(ce.Reason), "events lost") || ce.Code == 4003) {
		return ErrEventsLost
	}
	revoked := ce.Code == websocket.StatusPolicyViolation && strings.HasPrefix(ce.Reason, "unauthorized:") ||
		ce.Code == 4001 && ce.Reason == "credential revoked"
	return &Error{Status: int(ce.Code), Message: "the server closed the connection (" + ce.Code.String() + "): " + ce.Reason,
		Permanent: revoked}
}
