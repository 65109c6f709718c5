package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/cmdutil"
	"github.com/skiffdev/skiff/internal/invoke"
)

// InvokeOptions are the inputs of `skiff invoke`.
type InvokeOptions struct {
	Factory *cmdutil.Factory

	Workload   string
	Method     string
	Path       string
	Data       string
	Headers    []string
	CloudEvent bool
	Event      string
	Type       string
	Source     string
	Structured bool
	Local      bool
	Port       int
	Timeout    time.Duration
	// Public calls the workload's public URL (expose), TLS verified
	// against CACert ("": the system's roots), dialing ConnectTo when set.
	Public    bool
	CACert    string
	ConnectTo string
}

// NewCmdInvoke builds `skiff invoke`. runF replaces invokeRun in tests.
func NewCmdInvoke(f *cmdutil.Factory, runF func(context.Context, *InvokeOptions) error) *cobra.Command {
	opts := &InvokeOptions{Factory: f}
	cmd := &cobra.Command{
		Use:     "invoke [WORKLOAD]",
		GroupID: "observe",
		Short:   "Send an HTTP request or a CloudEvent to a workload",
		Long: heredoc.Doc(`
			Send a request to a deployed workload through an automatic port-forward to
			one of its ready pods, or with --local to the instance ` + "`skiff run`" + ` or
			` + "`skiff dev --local`" + ` started on this machine. The body of the answer goes to stdout, the status (and with
			-v the headers) to stderr; the exit code is 1 when the status is not 2xx.

			With --cloudevent (or --event TYPE), a CloudEvent is POSTed in binary mode
			(ce-* headers), or in structured mode with --structured: to the workload
			itself, not through the bus (skiff events publish stores one for the
			triggers).

			With --public, the request goes to the workload's public URL (skiff.yaml
			expose), through the gateway, as its users reach it: --path is under the
			exposed path, TLS is verified against the system's roots or --cacert, and
			--connect-to dials the gateway's address before DNS points the host at it.
		`),
		Example: heredoc.Doc(`
			skiff invoke hello --path '/?name=Ada'
			skiff invoke orders -X POST --path /items -d '{"name":"tea"}'
			skiff invoke thumbs --cloudevent --type com.example.upload --data '{"file":"a.png"}'
			skiff invoke hello --local
			skiff invoke thumbs --local --event com.example.upload -d '{"file":"a.png"}'
			skiff invoke front --public --path /items
			skiff invoke front --public --cacert ca.pem --connect-to 203.0.113.7:443
		`),
		Args: maxArgs(1, "the workload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Workload = args[0]
			}
			if cmd.Flags().Changed("event") {
				if opts.CloudEvent || cmd.Flags().Changed("type") {
					return cmdutil.Usagef("--event TYPE is --cloudevent --type TYPE: give one or the other")
				}
				opts.CloudEvent, opts.Type = true, opts.Event
			}
			if !opts.CloudEvent && (cmd.Flags().Changed("type") || opts.Structured) {
				return cmdutil.Usagef("--type and --structured are for CloudEvents: add --cloudevent")
			}
			if opts.CloudEvent && opts.Type == "" {
				return cmdutil.Usagef("--cloudevent needs --type, e.g. --type com.example.ping")
			}
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			if opts.Public && opts.Local {
				return cmdutil.Usagef("--public and --local are two different places: choose one")
			}
			if !opts.Public && (opts.CACert != "" || opts.ConnectTo != "") {
				return cmdutil.Usagef("--cacert and --connect-to are for the public URL: add --public")
			}
			if opts.ConnectTo != "" {
				if _, port, err := net.SplitHostPort(opts.ConnectTo); err != nil || port == "" {
					return cmdutil.Usagef("--connect-to %q must be HOST:PORT, e.g. 203.0.113.7:443", opts.ConnectTo)
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return invokeRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Method, "method", "X", "", "HTTP method (default GET, or POST with --data)")
	fl.StringVar(&opts.Path, "path", "/", "path and query of the request")
	fl.StringVarP(&opts.Data, "data", "d", "", "request body; @FILE reads a file, @- stdin")
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	fl.BoolVar(&opts.CloudEvent, "cloudevent", false, "send a CloudEvent")
	fl.StringVar(&opts.Type, "type", "", "CloudEvent type")
	fl.StringVar(&opts.Event, "event", "", "send a CloudEvent of this type (--cloudevent --type TYPE)")
	fl.StringVar(&opts.Source, "source", "skiff/invoke", "CloudEvent source")
	fl.BoolVar(&opts.Structured, "structured", false, "send the CloudEvent in structured mode")
	fl.BoolVar(&opts.Local, "local", false, "send to the local instance (started with skiff run or skiff dev --local)")
	fl.IntVar(&opts.Port, "port", 0, "with --local: the port (default: the workload's)")
	fl.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	fl.BoolVar(&opts.Public, "public", false, "send to the workload's public URL (skiff.yaml expose), through the gateway")
	fl.StringVar(&opts.CACert, "cacert", "", "with --public: PEM file of the CA to verify the certificate with (default: the system's)")
	fl.StringVar(&opts.ConnectTo, "connect-to", "", "with --public: dial HOST:PORT instead of the URL's host (Host and TLS name unchanged)")
	cmd.ValidArgsFunction = workloadCompletion(f)
	return cmd
}

func (o *InvokeOptions) request() (invoke.Request, error) {
	body := []byte(o.Data)
	if strings.HasPrefix(o.Data, "@") {
		var err error
		if o.Data == "@-" {
			body, err = io.ReadAll(io.LimitReader(o.Factory.IOStreams.In, invoke.MaxBody))
		} else {
			body, err = os.ReadFile(o.Data[1:])
		}
		if err != nil {
			return invoke.Request{}, cmdutil.Usagef("--data %s: %v", o.Data, err)
		}
	}
	headers := http.Header{}
	for _, h := range o.Headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return invoke.Request{}, cmdutil.Usagef("--header %q must be 'Name: value'", h)
		}
		headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if o.CloudEvent {
		req, err := invoke.CloudEvent{Type: o.Type, Source: o.Source, Data: body, Structured: o.Structured,
			ContentType: headers.Get("Content-Type")}.Request(o.Path)
		if err != nil {
			return req, cmdutil.Usagef("%v", err)
		}
		for k, vs := range headers {
			if !strings.EqualFold(k, "Content-Type") {
				req.Headers[k] = vs
			}
		}
		return req, nil
	}
	return invoke.Request{Method: strings.ToUpper(o.Method), Path: o.Path, Headers: headers, Body: body}, nil
}

func invokeRun(ctx context.Context, opts *InvokeOptions) error {
	f := opts.Factory
	var names []string
	if opts.Workload != "" {
		names = []string{opts.Workload}
	}
	pc, err := loadProjectContext(f, names)
	if err != nil {
		return err
	}
	w, err := pickWorkload(pc, opts.Workload)
	if err != nil {
		return cmdutil.Usagef("name the workload to invoke: %s", strings.Join(pc.project.WorkloadNames(), ", "))
	}
	req, err := opts.request()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var base, via string
	client := &http.Client{}
	if opts.Public {
		x := pc.project.Exposure(w)
		if x == nil {
			return cmdutil.Usagef("%s is not exposed: it has no public URL; add `expose: true` to it in skiff.yaml (docs/expose.md), or leave out --public", w.Name)
		}
		var roots *x509.CertPool
		if opts.CACert != "" {
			if roots, err = invoke.LoadRoots(opts.CACert); err != nil {
				return cmdutil.Usagef("--cacert: %v", err)
			}
		}
		client = invoke.PublicClient(roots, opts.ConnectTo)
		u, _ := url.Parse(x.URL())
		base, via = u.Scheme+"://"+u.Host, x.URL()
		req.Path = strings.TrimSuffix(u.Path, "/") + "/" + strings.TrimPrefix(req.Path, "/")
		if opts.ConnectTo != "" {
			via += " at " + opts.ConnectTo
		}
	} else if opts.Local {
		port := opts.Port
		if port == 0 {
			port = w.Port
		}
		base, via = fmt.Sprintf("http://127.0.0.1:%d", port), "local"
	} else {
		s, err := pc.session(ctx, f, nil)
		if err != nil {
			return err
		}
		defer s.Close()
		fw, err := s.Forward(ctx, w.Name)
		if err != nil {
			return err
		}
		defer fw.Close()
		base, via, req.Host = "http://"+fw.Addr, fw.Via, fw.Host
	}
	resp, err := invoke.Do(ctx, client, base, req)
	if err != nil {
		if opts.Public {
			return fmt.Errorf("no answer from %s at %s: %w", w.Name, via, invoke.Untrusted(strings.TrimPrefix(strings.TrimPrefix(base, "https://"), "http://"), err))
		}
		if opts.Local {
			return fmt.Errorf("no answer from %s at %s: %w; is `skiff run %s` or `skiff dev --local` running?", w.Name, base, err, w.Name)
		}
		return fmt.Errorf("no answer from %s (%s): %w", w.Name, via, err)
	}
	errOut := f.IOStreams.ErrOut
	if f.Globals.Output == cmdutil.FormatJSON || f.Globals.Output == cmdutil.FormatYAML {
		out := struct {
			*invoke.Response
			Body string `json:"body"`
		}{resp, string(resp.Body)}
		if err := cmdutil.Write(f.IOStreams.Out, f.Globals.Output, out, nil); err != nil {
			return err
		}
	} else {
		cs := f.IOStreams.ColorScheme()
		status := cs.Green(resp.Status)
		if !resp.OK() {
			status = cs.Red(resp.Status)
		}
		fmt.Fprintf(errOut, "%s from %s (%s) in %s\n", status, w.Name, via, resp.Duration.Round(time.Millisecond))
		if f.Globals.Verbose {
			keys := make([]string, 0, len(resp.Headers))
			for k := range resp.Headers {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(errOut, "%s: %s\n", k, strings.Join(resp.Headers[k], ", "))
			}
		}
		f.IOStreams.Out.Write(resp.Body)
		if len(resp.Body) > 0 && resp.Body[len(resp.Body)-1] != '\n' && f.IOStreams.IsStdoutTTY() {
			fmt.Fprintln(f.IOStreams.Out)
		}
	}
	if !resp.OK() {
		return &cmdutil.SilentError{Code: cmdutil.ExitFailure}
	}
	return nil
}
