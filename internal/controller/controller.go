package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/clearml-glue/clearml-glue/internal/clearml"
	"github.com/clearml-glue/clearml-glue/internal/config"
	"github.com/clearml-glue/clearml-glue/internal/metrics"
	"github.com/clearml-glue/clearml-glue/internal/monitor"
	"github.com/clearml-glue/clearml-glue/internal/scheduler"
	"github.com/clearml-glue/clearml-glue/internal/taskops"
)

// Worker registration and heartbeat timing.
const (
	// workerTimeoutSeconds is how long the server keeps the glue's worker without a register or
	// status report (workers.register timeout, the server's default): long enough to outlive
	// a restart of the glue, so the UI does not show the queues unserved meanwhile.
	workerTimeoutSeconds = 600
	// statusReportEvery is the worker heartbeat period: many reports per workerTimeoutSeconds, so
	// a few lost ones never expire the worker.
	statusReportEvery = 30 * time.Second
	// unregisterTimeout bounds workers.unregister when serving ends: a best-effort call (the
	// worker expires anyway) that must not hold up a shutdown or a handover of the Lease.
	unregisterTimeout = 5 * time.Second
)

// Retries of what the leader needs before it serves (the pending queue): from leadRetryInitial,
// doubling up to leadRetryMax, for as long as it leads. The cap keeps a recovered ClearML server
// noticed within half a minute without hammering one that is down.
const (
	leadRetryInitial = time.Second
	leadRetryMax     = 30 * time.Second
)

// Options are what Run needs beyond the settings; tests set them to run a glue in-process.
type Options struct {
	Settings   config.Settings
	RESTConfig *rest.Config
	Logger     *slog.Logger
	// Probes, when set, is flipped ready once the glue serves; Run serves it only if ServeHTTP.
	Probes    *metrics.Probes
	ServeHTTP bool
	// Started, when set, is called once the glue has started: it serves, or it stands by as a
	// ready follower (the process releases its start-up pages then).
	Started func()
	// MonitorWorkers is the number of monitor workers (default 4).
	MonitorWorkers int
	// File, when set, is where the glue config comes from (a glue run outside the chart);
	// otherwise it is the ConfigMap Settings.ConfigMap, watched in Settings.Namespace.
	File *FileSource
}

// Run runs the glue until ctx ends: it returns nil on a clean shutdown and an error when it
// loses the leader Lease. What keeps it from serving (a wrong URL or credentials, a missing
// queue or right) is reported by the preflight checks and retried, never a reason to exit.
func Run(ctx context.Context, o Options) error {
	s := o.Settings
	log := o.Logger
	if o.Probes == nil {
		o.Probes = &metrics.Probes{}
	}
	if o.MonitorWorkers == 0 {
		o.MonitorWorkers = 4
	}
	if o.Started == nil {
		o.Started = func() {}
	}
	o.Started = sync.OnceFunc(o.Started)
	restConfig := rest.CopyConfig(o.RESTConfig)
	restConfig.QPS, restConfig.Burst = s.KubeClientRate()
	restConfig.ContentType = "application/vnd.kubernetes.protobuf"
	restConfig.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	restConfig.DisableCompression = true
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	eventConfig := rest.CopyConfig(restConfig)
	eventConfig.QPS, eventConfig.Burst = s.EventClientRate()
	eventClient, err := kubernetes.NewForConfig(eventConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpErr := make(chan error, 1)
	if o.ServeHTTP {
		go func() { httpErr <- metrics.Serve(ctx, s.MetricsAddr, s.HealthAddr, o.Probes) }()
	}

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events(s.Namespace)})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "clearml-glue", Host: s.PodName})

	watch := newConfigWatch(s.Namespace, s.ConfigMap, recorder, log)
	if o.File != nil {
		watch.watchFiles(ctx, o.File)
		log.Info("waiting for a valid glue config", "source", o.File.Name)
		o.Probes.SetStatus("waiting for a valid glue config (" + o.File.Name + "); the log says why it is refused")
	} else {
		watch.start(ctx, cs)
		log.Info("waiting for a valid glue config", "configmap", s.Namespace+"/"+s.ConfigMap)
		o.Probes.SetStatus("waiting for a valid glue config (ConfigMap " + s.Namespace + "/" + s.ConfigMap +
			"); the log and the ConfigMap's Events say why it is refused")
	}
	select {
	case <-watch.first:
	case <-ctx.Done():
		return nil
	case err := <-httpErr:
		return err
	}

	// Preflight: the checks run now, and whenever the login fails, every poll interval until it
	// succeeds; the glue never exits on a wrong URL or wrong credentials, it says which value to
	// change (log, /readyz, Events on its Deployment) and takes the fixed value without a restart.
	diag := newDiagnosis(ctx, s, cs, o.Probes, recorder, log, o.File == nil)
	current := func() *scheduler.Snapshot { return watch.current.Load() }
	interval := func() time.Duration { return current().File.PollInterval() }
	newClient := func(eff config.Settings) (*clearml.Client, error) {
		return clearml.New(clearml.Config{
			APIHost: eff.APIHost, AccessKey: eff.AccessKey, SecretKey: eff.SecretKey,
			WorkerHeader: current().File.WorkerID, Logger: log, HTTPClient: httpClient(eff.VerifyCert),
		})
	}
	// The checks log in with the controller's own client: a start costs one login.
	diag.client = newClient
	var client *clearml.Client
	for client == nil {
		findings, eff, c := diag.run(ctx, current())
		if ctx.Err() != nil {
			return nil
		}
		if loggedIn(findings) {
			var err error
			if c == nil {
				if c, err = newClient(eff); err != nil {
					return err
				}
			}
			if _, ok := c.Claims(); !ok {
				err = c.Login(ctx)
			}
			if err != nil {
				log.Warn("clearml login failed; retrying every poll interval", "url", eff.APIHost, "err", err)
			} else {
				client = c
				if eff.APIHost != s.APIHost {
					log.Info("ClearML API URL taken from the glue config", "url", eff.APIHost, "environment", s.APIHost)
				}
				break
			}
		}
		o.Probes.SetStatus("not logged in to ClearML at " + eff.APIHost + "; retrying every poll interval")
		select {
		case <-ctx.Done():
			return nil
		case err := <-httpErr:
			return err
		case <-watch.reloaded:
		case <-time.After(interval()):
		}
	}
	go diag.watch(ctx, watch.reloaded, current, interval)

	g := &glue{opts: o, cs: cs, client: client, watch: watch, recorder: recorder, log: log}
	if !s.LeaderElection {
		metrics.IsLeader.Set(1)
		o.Probes.SetStatus("starting to serve")
		return g.lead(ctx)
	}
	// A follower that is configured, logged in and passes the checks is ready: it can take over
	// at once. Were only the leader ready, a rolling update (maxUnavailable 0) would wait forever
	// for the new pod, which cannot lead before the old one goes.
	o.Probes.SetStatus("standby, waiting for the leader Lease " + s.LeaseName)
	o.Probes.SetReady(true)
	o.Started()
	return elect(ctx, g.cs, s, g.recorder, g.opts.Probes, g.log, g.lead)
}

// maxIdleConns keeps a connection to the ClearML server for each call in flight (launches,
// monitor, heartbeat): with net/http's default of 2 idle connections per host, 32 launches in
// flight dialled a new connection for most calls (8 % of the controller's CPU in a burst, and a
// TCP handshake of latency each).
const maxIdleConns = 64

func httpClient(verify bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = maxIdleConns, maxIdleConns
	if !verify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user turned verification off (clearmlcheckCertificate: false)
	}
	return &http.Client{Transport: metrics.ClearMLTransport(t), Timeout: clearml.DefaultHTTPTimeout}
}

type glue struct {
	opts     Options
	cs       kubernetes.Interface
	client   *clearml.Client
	watch    *configWatch
	recorder record.EventRecorder
	log      *slog.Logger
}

// elect runs lead only while this replica holds the Lease. Whatever ends serving (an error, the
// Lease lost, shutdown) ends the election too: the Lease is released, /healthz fails, launches
// in flight finish, and Run returns, so the process exits and never holds the Lease without
// serving (a zombie leader). A new process starts as a follower.
func elect(ctx context.Context, cs kubernetes.Interface, s config.Settings, recorder record.EventRecorder, probes *metrics.Probes,
	log *slog.Logger, serve func(context.Context) error) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, s.Namespace, s.LeaseName,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: s.PodName, EventRecorder: recorder})
	if err != nil {
		return err
	}
	electCtx, stopElection := context.WithCancel(ctx)
	defer stopElection()
	served := make(chan error, 1) // lead's result, sent once if this replica ever led
	var leading atomic.Bool
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, ReleaseOnCancel: true, Name: s.LeaseName,
		LeaseDuration: LeaseDuration, RenewDeadline: RenewDeadline, RetryPeriod: RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				leading.Store(true)
				metrics.IsLeader.Set(1)
				log.Info("leading", "identity", s.PodName)
				err := serve(leadCtx)
				// Serving is over: stop renewing so another replica can take over.
				stopElection()
				served <- err
			},
			OnStoppedLeading: func() { metrics.IsLeader.Set(0) },
		},
	})
	if err != nil {
		return err
	}
	elector.Run(electCtx)
	if !leading.Load() {
		return nil // shut down before ever leading
	}
	err = <-served // wait for in-flight launches
	switch {
	case ctx.Err() != nil:
		return err
	case err != nil:
		probes.SetDead(err.Error())
		return fmt.Errorf("serving stopped, leader Lease released: %w", err)
	default:
		probes.SetDead("lost the leader Lease")
		return errors.New("lost the leader Lease")
	}
}

// Leader election timing: a new leader takes over within LeaseDuration of the old one's end.
const (
	LeaseDuration = 15 * time.Second
	RenewDeadline = 10 * time.Second
	RetryPeriod   = 2 * time.Second
)

// lead is the active glue: monitor, recovery, scheduler, worker heartbeat.
func (g *glue) lead(ctx context.Context) error {
	s := g.opts.Settings
	snap := g.watch.current.Load()
	ops := taskops.New(g.client, snap.File.WorkerID, snap.File.PendingQueue, g.log)
	current := func() *scheduler.Snapshot { return g.watch.current.Load() }
	mon := monitor.New(monitor.Options{
		Clientset: g.cs, Namespace: snap.File.Namespace, AgentName: snap.File.AgentName, Ops: ops,
		Config: func() *config.File { return current().File }, Recorder: g.recorder, Logger: g.log,
	})
	if err := mon.Start(ctx); err != nil {
		return err
	}
	sched := scheduler.New(scheduler.Options{
		Client: g.client, Ops: ops, Clientset: g.cs, Tracker: mon.Tracker(), Owns: mon.Watching,
		Foreign: scheduler.PythonGlueObjects(g.cs, func() []string { return current().File.PythonGlueNamespaces }), Config: current, Wake: g.watch.wake,
		MaxParallel: s.MaxParallelLaunches, Logger: g.log,
		Unresolved: g.watch.reportUnresolved,
	})
	// One lookup resolves the served queues and the pending queue together.
	queueIDs, err := sched.QueueIDs(ctx)
	if err != nil {
		g.log.Warn("serving the queues found; the others are looked up again every cycle", "err", err)
	}
	// The pending queue is needed before anything is launched; a ClearML outage at this moment
	// is waited out here rather than ending the leadership.
	if err := retryUntil(ctx, g.log, "resolve the pending queue", func() error {
		_, err := ops.PendingQueueID(ctx)
		return err
	}); err != nil {
		return err
	}
	if err := mon.Reconcile(ctx); err != nil {
		g.log.Warn("reconcile of existing objects incomplete", "err", err)
	}
	worker := snap.File.WorkerID
	if err := g.client.WorkersRegister(ctx, clearml.WorkersRegisterRequest{Worker: worker, Queues: queueIDs, Timeout: workerTimeoutSeconds}); err != nil {
		g.log.Warn("workers.register failed", "err", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unregisterTimeout)
		defer cancel()
		_ = g.client.WorkersUnregister(uctx, worker)
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sched.Recover(ctx); err != nil {
			g.log.Warn("recovery of popped tasks incomplete", "err", err)
		}
	})
	wg.Go(func() {
		mon.Run(ctx, g.opts.MonitorWorkers, func() time.Duration { return current().File.AbortCheckInterval() })
	})
	wg.Go(func() { g.heartbeat(ctx, worker, sched) })
	g.opts.Probes.SetStatus("serving")
	g.opts.Probes.SetReady(true)
	g.log.Info("serving", "queues", snap.File.QueueNames(), "worker", worker)
	g.opts.Started()
	err = sched.Run(ctx)
	g.opts.Probes.SetStatus("stopped serving")
	g.opts.Probes.SetReady(false)
	wg.Wait()
	return err
}

// retryUntil calls f with backoff until it succeeds or ctx ends.
func retryUntil(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := f()
		if err != nil {
			log.Warn("retrying", "what", what, "err", err)
		}
		return struct{}{}, err
	}, backoff.WithMaxElapsedTime(0), backoff.WithBackOff(&backoff.ExponentialBackOff{
		InitialInterval: leadRetryInitial, RandomizationFactor: 0.3, Multiplier: 2, MaxInterval: leadRetryMax,
	}))
	return err
}

func (g *glue) heartbeat(ctx context.Context, worker string, sched *scheduler.Scheduler) {
	t := time.NewTicker(statusReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ids := sched.Served()
			if err := g.client.WorkersStatusReport(ctx, clearml.WorkersStatusReportRequest{Worker: worker, Queues: ids}); err != nil {
				g.log.Warn("workers.status_report failed", "err", err)
			}
		}
	}
}
