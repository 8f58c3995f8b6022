package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freePorts returns n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var listeners []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range listeners {
		ln.Close()
	}
	return ports
}

// natsCluster is three nats-server processes with JetStream, clustered
// on loopback, each killable with -9 and restartable on its ports and
// store.
type natsCluster struct {
	t     *testing.T
	bin   string
	ports []int // client ports, then cluster ports
	dirs  []string
	procs []*exec.Cmd
	logs  []*syncBuffer
}

func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: natsServer.build(t), ports: freePorts(t, 6), procs: make([]*exec.Cmd, 3), logs: make([]*syncBuffer, 3)}
	for range 3 {
		c.dirs = append(c.dirs, t.TempDir())
	}
	for i := range 3 {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range 3 {
			c.kill(i)
		}
		if t.Failed() {
			for i, l := range c.logs {
				t.Logf("nats-%d:\n%s", i, l.String())
			}
		}
	})
	c.waitJetStream(nil)
	return c
}

func (c *natsCluster) start(i int) {
	c.t.Helper()
	var routes []string
	for j := range 3 {
		if j != i {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(c.ports[3+j]))
		}
	}
	// The cluster runs deploy/nats/cluster.conf, the config the docs give
	// operators, with each node's values in its environment.
	cmd := exec.Command(c.bin, "-c", "../deploy/nats/cluster.conf")
	cmd.Env = append(os.Environ(), "NATS_NAME=nats-"+strconv.Itoa(i), "NATS_STORE="+c.dirs[i],
		"NATS_LISTEN=127.0.0.1:"+strconv.Itoa(c.ports[i]), "NATS_CLUSTER_LISTEN=127.0.0.1:"+strconv.Itoa(c.ports[3+i]),
		"NATS_ROUTE_1="+routes[0], "NATS_ROUTE_2="+routes[1])
	c.logs[i] = new(syncBuffer)
	cmd.Stdout, cmd.Stderr = c.logs[i], c.logs[i]
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// kill sends SIGKILL to node i and waits for it to be gone.
func (c *natsCluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
		c.procs[i] = nil
	}
}

// url is node i's client URL; urls all of them.
func (c *natsCluster) url(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(c.ports[i]) }

func (c *natsCluster) urls() []string { return []string{c.url(0), c.url(1), c.url(2)} }

// waitJetStream waits until the running nodes (all if alive is nil) have
// a JetStream meta leader: each answers an account info request.
func (c *natsCluster) waitJetStream(alive []int) {
	c.t.Helper()
	if alive == nil {
		alive = []int{0, 1, 2}
	}
	for _, i := range alive {
		waitFor(c.t, time.Minute, "JetStream on nats-"+strconv.Itoa(i), func() bool {
			return withJetStream(c.url(i), func(ctx context.Context, js jetstream.JetStream) error {
				_, err := js.AccountInfo(ctx)
				return err
			}) == nil
		})
	}
	if len(alive) < 3 {
		return
	}
	// Every peer placeable: a stream of three replicas can be made.
	waitFor(c.t, time.Minute, "room for three replicas", func() bool {
		return withJetStream(c.url(0), func(ctx context.Context, js jetstream.JetStream) error {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3}); err != nil {
				return err
			}
			return js.DeleteStream(ctx, "PROBE")
		}) == nil
	})
}

// withJetStream connects to url and calls fn with 5s to answer.
func withJetStream(url string, fn func(context.Context, jetstream.JetStream) error) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return fn(ctx, js)
}

// heraldNode is a herald serve process on the cluster.
type heraldNode struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
}

// startHeraldOn runs herald serve with config on the cluster's URLs.
func startHeraldOn(t *testing.T, c *natsCluster, config string) *heraldNode {
	t.Helper()
	work := t.TempDir()
	cfgPath := filepath.Join(work, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(heraldBinary(t), "serve", "--config", cfgPath, "--data", filepath.Join(work, "data"),
		"--listen", "127.0.0.1:0", "--nats", strings.Join(c.urls(), ","))
	h := &heraldNode{cmd: cmd, logs: new(syncBuffer)}
	cmd.Stdout, cmd.Stderr = h.logs, h.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && h.cmd != nil {
			// SIGQUIT: the Go runtime prints every goroutine's stack, for a
			// node that stopped making progress.
			h.cmd.Process.Signal(syscall.SIGQUIT)
			exited := make(chan struct{})
			go func() { h.cmd.Wait(); close(exited) }()
			select {
			case <-exited:
				h.cmd = nil
			case <-time.After(10 * time.Second):
			}
		}
		h.kill()
		if t.Failed() {
			t.Logf("herald %s:\n%s", h.addr, h.logs.String())
		}
	})
	h.addr = waitListening(t, h.logs.String)
	waitHealthy(t, "http://"+h.addr)
	return h
}

func (h *heraldNode) kill() {
	if h.cmd != nil {
		h.cmd.Process.Signal(syscall.SIGKILL)
		h.cmd.Wait()
		h.cmd = nil
	}
}

// switchProxy forwards loopback connections to a target it can change,
// as a load balancer in front of herald nodes does; cut closes what it
// carries.
type switchProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string     // guarded by mu
	conns  []net.Conn // guarded by mu
}

func startSwitchProxy(t *testing.T, target string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *switchProxy) addr() string { return p.ln.Addr().String() }

// switchTo sends new connections to target and cuts the open ones.
func (p *switchProxy) switchTo(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
	p.cut()
}

func (p *switchProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
