// Package invoke sends an HTTP request or a CloudEvent to a workload and
// reads the answer.
package invoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// MaxBody bounds the answer read into memory.
const MaxBody = 16 << 20

// Request is an HTTP request to a workload.
type Request struct {
	Method  string
	Path    string
	Headers http.Header
	Body    []byte
	// Host overrides the Host header ("": the base URL's).
	Host string
}

// CloudEvent is an event to send in the CloudEvents HTTP binding.
type CloudEvent struct {
	ID          string
	Type        string
	Source      string
	Subject     string
	ContentType string // of Data; default application/json
	Data        []byte
	// Structured sends the whole event as application/cloudevents+json;
	// otherwise binary mode (ce-* headers, Data as the body).
	Structured bool
}

// Request builds the HTTP request of the event, posted to path.
func (e CloudEvent) Request(path string) (Request, error) {
	if e.Type == "" || e.Source == "" {
		return Request{}, fmt.Errorf("a CloudEvent needs a type and a source")
	}
	if e.ID == "" {
		b := make([]byte, 8)
		rand.Read(b)
		e.ID = hex.EncodeToString(b)
	}
	ct := e.ContentType
	if ct == "" {
		ct = "application/json"
	}
	h := http.Header{}
	if !e.Structured {
		h.Set("ce-specversion", "1.0")
		h.Set("ce-id", e.ID)
		h.Set("ce-type", e.Type)
		h.Set("ce-source", e.Source)
		if e.Subject != "" {
			h.Set("ce-subject", e.Subject)
		}
		h.Set("Content-Type", ct)
		return Request{Method: http.MethodPost, Path: path, Headers: h, Body: e.Data}, nil
	}
	env := map[string]any{"specversion": "1.0", "id": e.ID, "type": e.Type, "source": e.Source, "datacontenttype": ct}
	if e.Subject != "" {
		env["subject"] = e.Subject
	}
	if len(e.Data) > 0 {
		if strings.HasSuffix(ct, "json") && json.Valid(e.Data) {
			env["data"] = json.RawMessage(e.Data)
		} else {
			env["data"] = string(e.Data)
		}
	}
	body, err := json.Marshal(env)
	if err != nil {
		return Request{}, err
	}
	h.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	return Request{Method: http.MethodPost, Path: path, Headers: h, Body: body}, nil
}

// Response is what the workload answered.
type Response struct {
	Status     string        `json:"status"`
	StatusCode int           `json:"statusCode"`
	Headers    http.Header   `json:"headers"`
	Body       []byte        `json:"-"`
	Duration   time.Duration `json:"-"`
}

// MarshalJSON writes the time the answer took as seconds.
func (r *Response) MarshalJSON() ([]byte, error) {
	type plain Response
	return json.Marshal(struct {
		*plain
		Seconds float64 `json:"seconds"`
	}{(*plain)(r), r.Duration.Seconds()})
}

// OK reports a 2xx status.
func (r *Response) OK() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Do sends req to baseURL (scheme://host:port).
func Do(ctx context.Context, client *http.Client, baseURL string, req Request) (*Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
		if len(req.Body) > 0 {
			method = http.MethodPost
		}
	}
	path := req.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	hr, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(baseURL, "/")+path, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Headers {
		for _, v := range vs {
			hr.Header.Add(k, v)
		}
	}
	if req.Host != "" {
		hr.Host = req.Host
	}
	if len(req.Body) > 0 && hr.Header.Get("Content-Type") == "" {
		ct := "text/plain; charset=utf-8"
		if json.Valid(req.Body) {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	start := time.Now()
	resp, err := client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return &Response{Status: resp.Status, StatusCode: resp.StatusCode, Headers: resp.Header, Body: body, Duration: time.Since(start)}, nil
}

// PublicClient is the HTTP client of a workload's public URL. It verifies
// TLS against roots (nil: the system's pool). connectTo, when set, is the
// address (host:port) dialed instead of the URL's host, whatever its name
// resolves to: the request keeps its Host header and TLS server name, as
// before DNS points at the gateway.
func PublicClient(roots *x509.CertPool, connectTo string) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if connectTo != "" {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, connectTo)
		}
		tr.Proxy = nil
	}
	return &http.Client{Transport: tr}
}

// LoadRoots reads the PEM certificates of file into a pool.
func LoadRoots(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// UntrustedError says a public URL's certificate does not verify.
type UntrustedError struct {
	Host string
	Err  error
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("the certificate %s presents does not verify: %v; pass --cacert FILE with the CA that issued it (a private or test issuer), or check tls in skiff.yaml", e.Host, e.Err)
}

func (e *UntrustedError) Unwrap() error { return e.Err }

// Untrusted turns an error of a request to host that failed to verify
// the server's certificate into an *UntrustedError; others are returned
// as they are.
func Untrusted(host string, err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostErr) || errors.As(err, &verify) {
		return &UntrustedError{Host: host, Err: err}
	}
	return err
}
