// knative-replay replays an autoscaler trace (tests/operator/controllers/inference/traces/*.csv)
// through Knative Serving's own KPA decider (knative.dev/serving/pkg/autoscaler/scaling, v0.42.2:
// go.mod says why not a newer release) with
// the trace's settings and prints Knative's decision at every tick as CSV:
//
//	second,decider,desired
//
// decider is the decider's DesiredPodCount (-1 while it has no data), desired what the KPA scaler
// makes of it: the value within min/max replicas (applyBounds in
// pkg/reconciler/autoscaling/kpa/scaler.go), or the current scale (the trace's ready pods) when
// the decider has no data. The scaler's scale-to-zero grace period is not replayed (it waits on
// the activator's probes and the PodAutoscaler's status times, outside the decider).
//
// The decider reads ready pods from an Endpoints lister and metrics from the metric collector.
// As Knative's own decider tests do (pkg/autoscaler/scaling/autoscaler_test.go), both are fed by
// small fakes: the pod counter returns the trace's ready_pods column, and the metric client keeps
// the collector's window averages (aggregation.TimedFloat64Buckets, stable and panic window),
// recording an observation exactly when the collector would (see record below).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"

	"knative.dev/serving/pkg/autoscaler/aggregation"
	"knative.dev/serving/pkg/autoscaler/metrics"
	"knative.dev/serving/pkg/autoscaler/scaling"
)

type tick struct {
	second   int
	observed float64
	ready    int
}

type trace struct {
	settings map[string]string
	ticks    []tick
}

// readTrace parses "# key=value" setting lines and "second,observed,ready_pods" rows.
func readTrace(path string) (*trace, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	t := &trace{settings: map[string]string{}}
	scanner := bufio.NewScanner(file)
	for line := 1; scanner.Scan(); line++ {
		text := strings.TrimSpace(scanner.Text())
		switch {
		case text == "" || text == "second,observed,ready_pods":
		case strings.HasPrefix(text, "#"):
			if key, value, ok := strings.Cut(strings.TrimSpace(text[1:]), "="); ok {
				t.settings[strings.TrimSpace(key)] = strings.TrimSpace(value)
			}
		default:
			fields := strings.Split(text, ",")
			if len(fields) != 3 {
				return nil, fmt.Errorf("%s:%d: want second,observed,ready_pods", path, line)
			}
			second, err1 := strconv.Atoi(fields[0])
			observed, err2 := strconv.ParseFloat(fields[1], 64)
			ready, err3 := strconv.Atoi(fields[2])
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			t.ticks = append(t.ticks, tick{second, observed, ready})
		}
	}
	return t, scanner.Err()
}

func (t *trace) number(key string, fallback float64) float64 {
	if value, ok := t.settings[key]; ok {
		if parsed, err := strconv.ParseFloat(value, 64); err == nil {
			return parsed
		}
		fmt.Fprintf(os.Stderr, "knative-replay: setting %s=%q is not a number\n", key, value)
		os.Exit(2)
	}
	return fallback
}

func (t *trace) seconds(key string, fallback float64) time.Duration {
	return time.Duration(t.number(key, fallback) * float64(time.Second))
}

// fakePodCounter is the decider's view of the Endpoints lister: the trace's ready pods.
type fakePodCounter struct{ ready int }

func (f *fakePodCounter) ReadyCount() (int, error)    { return f.ready, nil }
func (f *fakePodCounter) NotReadyCount() (int, error) { return 0, nil }

// windowedMetrics holds what metrics.MetricCollector keeps per revision for one metric.
type windowedMetrics struct {
	stable, panic *aggregation.TimedFloat64Buckets
	stableWindow  time.Duration
}

// record mirrors collection.record in pkg/autoscaler/metrics/collector.go. The collector records
// every scrape while pods exist (the scraped stat carries the scraper's pod name, so it is never
// the empty stat, zero load included); with no pods the scraper returns the empty stat, which is
// dropped, and only the activator's reports of actual requests are recorded.
func (w *windowedMetrics) record(now time.Time, observed float64, ready int) {
	if ready == 0 && observed == 0 {
		return
	}
	w.stable.Record(now, observed)
	w.panic.Record(now, observed)
}

// StableAndPanic mirrors MetricCollector.StableAndPanicConcurrency/RPS (the same code for both).
func (w *windowedMetrics) StableAndPanic(now time.Time) (float64, float64, error) {
	if w.stable.IsEmpty(now) {
		return 0, 0, metrics.ErrNoData
	}
	return w.stable.WindowAverage(now), w.panic.WindowAverage(now), nil
}

func (w *windowedMetrics) StableAndPanicConcurrency(types.NamespacedName, time.Time) (float64, float64, error) {
	return 0, 0, errors.New("unused")
}

func (w *windowedMetrics) StableAndPanicRPS(types.NamespacedName, time.Time) (float64, float64, error) {
	return 0, 0, errors.New("unused")
}

type concurrencyClient struct{ *windowedMetrics }

func (c concurrencyClient) StableAndPanicConcurrency(_ types.NamespacedName, now time.Time) (float64, float64, error) {
	return c.StableAndPanic(now)
}

type rpsClient struct{ *windowedMetrics }

func (c rpsClient) StableAndPanicRPS(_ types.NamespacedName, now time.Time) (float64, float64, error) {
	return c.StableAndPanic(now)
}

// applyBounds is the KPA scaler's (pkg/reconciler/autoscaling/kpa/scaler.go, unexported there).
func applyBounds(min, max, x int32) int32 {
	if x < min {
		return min
	}
	if max != 0 && x > max {
		return max
	}
	return x
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: knative-replay TRACE.csv\nPrints second,decider,desired per tick (Knative Serving's KPA decider).")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	t, err := readTrace(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "knative-replay:", err)
		os.Exit(1)
	}
	metric := t.settings["metric"]
	if metric == "" {
		metric = "concurrency"
	}
	stableWindow := t.seconds("stable_window", 60)
	panicWindow := t.seconds("panic_window", 6)
	spec := &scaling.DeciderSpec{
		MaxScaleUpRate:   t.number("max_scale_up_rate", 1000),
		MaxScaleDownRate: t.number("max_scale_down_rate", 2),
		ScalingMetric:    metric,
		TargetValue:      t.number("target", 70),
		TotalValue:       t.number("target", 70) / 0.7,
		// -1: the activator stays in the path (TBC only changes routing, not the decision).
		TargetBurstCapacity: -1,
		PanicThreshold:      t.number("panic_threshold", 2),
		StableWindow:        stableWindow,
		ScaleDownDelay:      t.seconds("scale_down_delay", 0),
		Reachable:           true,
		ActivationScale:     int32(t.number("activation_scale", 1)),
	}
	windows := &windowedMetrics{
		stable:       aggregation.NewTimedFloat64Buckets(stableWindow, time.Second),
		panic:        aggregation.NewTimedFloat64Buckets(panicWindow, time.Second),
		stableWindow: stableWindow,
	}
	var client metrics.MetricClient = concurrencyClient{windows}
	if metric == "rps" {
		client = rpsClient{windows}
	}
	pods := &fakePodCounter{}
	if len(t.ticks) > 0 {
		pods.ready = t.ticks[0].ready
	}
	// The trace's clock starts now, at an even second: the scale-down delay window keeps 2 s
	// buckets (the decider's tick interval) indexed by Unix time / 2, so the alignment must be
	// fixed for the replay to be deterministic; and the decider stamps a start-up panic (more than
	// one ready pod) with time.Now(), which then lies within trace second 0, as in our autoscaler.
	start := time.Now().Truncate(2 * time.Second).Add(2 * time.Second)
	time.Sleep(time.Until(start))
	decider := scaling.New(context.Background(), "default", "trace", client, pods, spec)
	logger := zap.NewNop().Sugar()
	minScale, maxScale := int32(t.number("min_replicas", 0)), int32(t.number("max_replicas", 0))
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	fmt.Fprintln(out, "second,decider,desired")
	for _, k := range t.ticks {
		now := start.Add(time.Duration(k.second) * time.Second)
		pods.ready = k.ready
		windows.record(now, k.observed, k.ready)
		result := decider.Scale(logger, now)
		// Without data the KPA scaler leaves the scale alone: the current (ready) count.
		desired := int32(k.ready)
		if result.ScaleValid {
			desired = applyBounds(minScale, maxScale, result.DesiredPodCount)
		}
		fmt.Fprintf(out, "%d,%d,%d\n", k.second, result.DesiredPodCount, desired)
	}
}
