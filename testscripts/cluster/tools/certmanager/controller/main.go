// Command controller is the test cluster's cert-manager controller: the
// controllers of cert-manager's pkg/ that ACME (http-01 through a Gateway)
// and CA issuance need, wired by hand because the module's own mains
// (cmd/controller/app) import its internal/ packages. Left out: leader
// election (one replica), the ingress and gateway shims (skiff renders
// Certificates itself), Vault and Venafi, the CertificateSigningRequest
// controllers, the metrics and health servers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Each registers itself with controller.Known().
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer kinds the (Cluster)Issuer controllers set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert-manager", flag.ContinueOnError)
	var (
		namespace   = fs.String("cluster-resource-namespace", "cert-manager", "where ClusterIssuers' Secrets live")
		solverImage = fs.String("acme-http01-solver-image", "", "image of the http-01 solver pods (required)")
		nameservers = fs.String("acme-http01-solver-nameservers", "", "host:port of DNS servers for the http-01 self check, comma-separated")
		workers     = fs.Int("workers", 5, "workers per controller")
		verbosity   = fs.Int("v", 0, "log verbosity")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *solverImage == "" {
		return errors.New("-acme-http01-solver-image is required")
	}
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	if err := klogFlags.Set("v", fmt.Sprint(*verbosity)); err != nil {
		return err
	}
	ctx = logf.NewContext(ctx, logf.Log)

	opts := controller.ContextOptions{
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: *namespace},
		ACMEOptions: controller.ACMEOptions{
			HTTP01SolverImage:                 *solverImage,
			HTTP01SolverResourceRequestCPU:    resource.MustParse("10m"),
			HTTP01SolverResourceRequestMemory: resource.MustParse("16Mi"),
			HTTP01SolverResourceLimitsCPU:     resource.MustParse("100m"),
			HTTP01SolverResourceLimitsMemory:  resource.MustParse("64Mi"),
			ACMEHTTP01SolverRunAsNonRoot:      true,
			DNS01CheckRetryPeriod:             10 * time.Second,
		},
		CertificateOptions: controller.CertificateOptions{
			CopiedAnnotationPrefixes: []string{"*", "-kubectl.kubernetes.io/"},
			// cert-manager's defaults are 1h and 32h: a test cluster
			// retries a failed issuance sooner.
			CertificateRequestMinimumBackoffDuration: 10 * time.Second,
			CertificateRequestMaximumBackoffDuration: 2 * time.Minute,
		},
		SchedulerOptions: controller.SchedulerOptions{MaxConcurrentChallenges: 60},
		// http-01 through a Gateway: the gatewayHTTPRoute solver.
		ConfigOptions: controller.ConfigOptions{EnableGatewayAPI: true},
	}
	if *nameservers != "" {
		opts.HTTP01SolverNameservers = strings.Split(*nameservers, ",")
	}
	factory, err := controller.NewContextFactory(ctx, opts)
	if err != nil {
		return err
	}

	known := controller.Known()
	names := make([]string, 0, len(known))
	for name := range known {
		names = append(names, name)
	}
	sort.Strings(names)
	ctrls := make([]controller.Interface, 0, len(names))
	for _, name := range names {
		c, err := known[name](factory)
		if err != nil {
			return fmt.Errorf("setting up controller %s: %w", name, err)
		}
		ctrls = append(ctrls, c)
	}
	// The controllers registered their informers while being built: start
	// them now (each controller's Run waits for its caches to sync).
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	if !shared.GatewaySolverEnabled {
		return errors.New("the Gateway API CRDs are not installed: the gatewayHTTPRoute solver needs them")
	}
	shared.GWShared.Start(ctx.Done())
	logf.Log.Info("starting controllers", "controllers", names)

	var wg sync.WaitGroup
	errs := make(chan error, len(ctrls))
	for i, c := range ctrls {
		wg.Go(func() {
			if err := c.Run(*workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", names[i], err)
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
