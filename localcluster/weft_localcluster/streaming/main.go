// weft-kubelet-streaming: the kubelet API of Weft's node agent, served over TLS.
//
// The API server reaches a node's kubelet for `kubectl exec`, `attach` and
// `port-forward` over SPDY (it translates kubectl's WebSocket streams). This program
// serves those with the kubelet's own streaming handlers (k8s.io/cri-streaming) and
// hands every other request (containerLogs, healthz) to the node agent's Python
// server on a Unix socket. It learns how to run a command in a container, and which
// network namespace a pod has, from that same socket:
//
//	GET /weft/exec/{namespace}/{pod}/{container} -> {"prefix": [...], "env": [...], "cwd": "..."}
//	GET /weft/sandbox/{namespace}/{pod}          -> {"netns": "/run/netns/..."}
//
// The prefix enters the pod's namespaces and takes the container's user (the node
// agent's `runtime.in_pod`); the command follows it.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

const (
	idleTimeout           = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

type agent struct {
	client *http.Client
}

type execPlan struct {
	Prefix []string `json:"prefix"`
	Env    []string `json:"env"`
	Cwd    string   `json:"cwd"`
}

type sandbox struct {
	Netns string `json:"netns"`
}

func (a *agent) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+path, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, into)
}

// runtime: the streaming handlers' Executor, Attacher and PortForwarder.
type podRuntime struct {
	agent     *agent
	namespace string
}

func (r *podRuntime) ExecInContainer(ctx context.Context, pod, _ string, container string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	var plan execPlan
	if err := r.agent.get(ctx, "/weft/exec/"+url.PathEscape(r.namespace)+"/"+url.PathEscape(pod)+"/"+url.PathEscape(container), &plan); err != nil {
		return err
	}
	if len(plan.Prefix) == 0 && len(cmd) == 0 {
		return errors.New("no command to run")
	}
	argv := append(append([]string{}, plan.Prefix...), cmd...)
	command := exec.CommandContext(ctx, argv[0], argv[1:]...)
	command.Env = plan.Env
	command.Dir = plan.Cwd
	if tty {
		err := runWithTTY(command, in, out, resize)
		return exitError(err)
	}
	return exitError(runWithPipes(command, in, out, errOut))
}

func (r *podRuntime) AttachContainer(context.Context, string, string, string, io.Reader, io.WriteCloser, io.WriteCloser, bool, <-chan remotecommand.TerminalSize) error {
	return errors.New("attach is not supported by the Weft node agent: its containers' output goes to their logs (kubectl logs -f)")
}

func (r *podRuntime) PortForward(ctx context.Context, pod, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	var box sandbox
	if err := r.agent.get(ctx, "/weft/sandbox/"+url.PathEscape(r.namespace)+"/"+url.PathEscape(pod), &box); err != nil {
		return err
	}
	conn, err := dialIn(box.Netns, port)
	if err != nil {
		return fmt.Errorf("port %d of pod %s/%s: %w", port, r.namespace, pod, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); closeWrite(conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

func closeWrite(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}

// dialIn connects to localhost:port inside a network namespace. A socket belongs to
// the namespace it was made in; the thread that entered the namespace is never given
// back to the Go scheduler (it ends with its goroutine, still locked).
func dialIn(netns string, port int32) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	made := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			made <- result{nil, err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			made <- result{nil, fmt.Errorf("setns %s: %w", netns, err)}
			return
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		made <- result{conn, err}
	}()
	r := <-made
	return r.conn, r.err
}

func runWithPipes(command *exec.Cmd, in io.Reader, out, errOut io.Writer) error {
	if out != nil {
		command.Stdout = out
	}
	if errOut != nil {
		command.Stderr = errOut
	}
	command.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	var stdin io.WriteCloser
	if in != nil {
		pipe, err := command.StdinPipe()
		if err != nil {
			return err
		}
		stdin = pipe
	}
	if err := command.Start(); err != nil {
		return err
	}
	if stdin != nil {
		go func() { _, _ = io.Copy(stdin, in); _ = stdin.Close() }()
	}
	return command.Wait()
}

func runWithTTY(command *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer master.Close()
	command.Stdin, command.Stdout, command.Stderr = slave, slave, slave
	command.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := command.Start(); err != nil {
		slave.Close()
		return err
	}
	slave.Close()
	go func() {
		for size := range resize {
			ws := &unix.Winsize{Row: size.Height, Col: size.Width}
			_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
		}
	}()
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	copied := make(chan struct{})
	go func() {
		if out != nil {
			_, _ = io.Copy(out, master) // ends with EIO once the last writer closes
		}
		close(copied)
	}()
	err = command.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background child keeps the terminal open
	}
	return err
}

func openPTY() (*os.File, *os.File, error) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, err
	}
	number, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", number), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

func exitError(err error) error {
	var exited *exec.ExitError
	if errors.As(err, &exited) {
		return &utilexec.ExitErrorWrapper{ExitError: exited}
	}
	return err
}

// The kubelet's paths: /exec/{ns}/{pod}[/{uid}]/{container}, /portForward/{ns}/{pod}[/{uid}].
func parts(path, prefix string) []string {
	return strings.Split(strings.Trim(strings.TrimPrefix(path, prefix), "/"), "/")
}

func serveExec(a *agent) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		p := parts(req.URL.Path, "/exec/")
		if len(p) != 3 && len(p) != 4 {
			http.Error(w, "expected /exec/{namespace}/{pod}/{container}", http.StatusNotFound)
			return
		}
		opts, err := remotecommand.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd := req.URL.Query()["command"]
		rt := &podRuntime{agent: a, namespace: p[0]}
		remotecommand.ServeExec(w, req, rt, p[1], "", p[len(p)-1], cmd, opts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}
}

func serveAttach(a *agent) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		p := parts(req.URL.Path, "/attach/")
		if len(p) != 3 && len(p) != 4 {
			http.Error(w, "expected /attach/{namespace}/{pod}/{container}", http.StatusNotFound)
			return
		}
		opts, err := remotecommand.NewOptions(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rt := &podRuntime{agent: a, namespace: p[0]}
		remotecommand.ServeAttach(w, req, rt, p[1], "", p[len(p)-1], opts, idleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
	}
}

func servePortForward(a *agent) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		p := parts(req.URL.Path, "/portForward/")
		if len(p) != 2 && len(p) != 3 {
			http.Error(w, "expected /portForward/{namespace}/{pod}", http.StatusNotFound)
			return
		}
		opts, err := portforward.NewV4Options(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rt := &podRuntime{agent: a, namespace: p[0]}
		portforward.ServePortForward(w, req, rt, p[1], "", opts, idleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
	}
}

// authorized admits what a kubelet with webhook authorization would for the API server:
// the client certificate the API server presents (--kubelet-client-certificate), or a
// cluster admin's.
func authorized(next http.Handler, users, groups map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		subject := req.TLS.PeerCertificates[0].Subject
		ok := users[subject.CommonName]
		for _, org := range subject.Organization {
			ok = ok || groups[org]
		}
		if !ok {
			http.Error(w, fmt.Sprintf("Forbidden (user=%s)", subject.CommonName), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, req)
	})
}

func set(csv string) map[string]bool {
	found := map[string]bool{}
	for _, item := range strings.Split(csv, ",") {
		if item = strings.TrimSpace(item); item != "" {
			found[item] = true
		}
	}
	return found
}

func main() {
	listen := flag.String("listen", "", "address:port to serve the kubelet API on")
	certFile := flag.String("tls-cert-file", "", "serving certificate")
	keyFile := flag.String("tls-private-key-file", "", "serving key")
	clientCA := flag.String("client-ca-file", "", "CA of the clients' certificates")
	users := flag.String("allowed-users", "kube-apiserver-kubelet-client", "client certificate CNs admitted")
	groups := flag.String("allowed-groups", "system:masters", "client certificate organizations admitted")
	backend := flag.String("agent-socket", "", "the node agent's Unix socket")
	flag.Parse()
	// The node agent started us: go with it, even when it is killed outright.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0)
	if os.Getppid() == 1 {
		log.Fatal("the node agent that started this server is gone")
	}
	if *listen == "" || *certFile == "" || *keyFile == "" || *clientCA == "" || *backend == "" {
		log.Fatal("--listen, --tls-cert-file, --tls-private-key-file, --client-ca-file and --agent-socket are required")
	}
	caPEM, err := os.ReadFile(*clientCA)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		log.Fatalf("no certificate in %s", *clientCA)
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *backend)
		},
	}
	a := &agent{client: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "agent"
		},
		Transport:     transport,
		FlushInterval: -1, // `kubectl logs -f` streams
	}
	mux := http.NewServeMux()
	mux.Handle("/exec/", serveExec(a))
	mux.Handle("/attach/", serveAttach(a))
	mux.Handle("/portForward/", servePortForward(a))
	mux.Handle("/weft/", http.NotFoundHandler()) // the agent's own questions stay internal
	mux.Handle("/", proxy)
	server := &http.Server{
		Addr:              *listen,
		Handler:           authorized(mux, set(*users), set(*groups)),
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			ClientCAs:  pool,
			ClientAuth: tls.RequireAndVerifyClientCert,
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}, // SPDY upgrades need HTTP/1.1
		},
	}
	log.Printf("serving the kubelet API on %s", *listen)
	log.Fatal(server.ListenAndServeTLS(*certFile, *keyFile))
}
