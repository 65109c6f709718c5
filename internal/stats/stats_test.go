package stats

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"
)

func hist(bounds []float64, values ...float64) Histogram {
	h := Histogram{Bounds: bounds, Counts: make([]int64, len(bounds)+1)}
	for _, v := range values {
		i := 0
		for i < len(bounds) && v > bounds[i] {
			i++
		}
		h.Counts[i]++
		h.Sum += v
	}
	return h
}

func TestQuantileInterpolatesWithinTheBucket(t *testing.T) {
	// 100 observations: 90 in (0, 0.1], 10 in (0.1, 1].
	vals := make([]float64, 0, 100)
	for range 90 {
		vals = append(vals, 0.05)
	}
	for range 10 {
		vals = append(vals, 0.5)
	}
	h := hist([]float64{0.1, 1}, vals...)
	for _, tc := range []struct{ q, want float64 }{
		{0.5, 0.1 * 50 / 90},
		{0.9, 0.1},
		{0.99, 0.1 + 0.9*9/10},
		{1, 1},
	} {
		if got := h.Quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := h.Count(); got != 100 {
		t.Errorf("Count = %d, want 100", got)
	}
	if got, want := h.Mean(), (90*0.05+10*0.5)/100; math.Abs(got-want) > 1e-9 {
		t.Errorf("Mean = %v, want %v", got, want)
	}
}

func TestQuantileAboveEveryBoundIsTheHighestBound(t *testing.T) {
	h := hist([]float64{0.1, 1}, 5, 7)
	if got := h.Quantile(0.5); got != 1 {
		t.Errorf("Quantile = %v, want 1", got)
	}
}

func TestQuantileOfNothingIsNaN(t *testing.T) {
	if got := (Histogram{}).Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("Quantile of an empty histogram = %v, want NaN", got)
	}
}

func TestMergeSameBoundsAddsBuckets(t *testing.T) {
	var h Histogram
	h.Merge(hist([]float64{0.1, 1}, 0.05, 0.5))
	h.Merge(hist([]float64{0.1, 1}, 0.05, 3))
	if want := []int64{2, 1, 1}; !slices.Equal(h.Counts, want) {
		t.Errorf("Counts = %v, want %v", h.Counts, want)
	}
	if math.Abs(h.Sum-3.6) > 1e-9 {
		t.Errorf("Sum = %v, want 3.6", h.Sum)
	}
}

func TestMergeOtherBoundsNeverLowersAQuantile(t *testing.T) {
	h := hist([]float64{0.1, 1}, 0.05)
	h.Merge(hist([]float64{0.05, 0.5, 5}, 0.01, 0.3, 2, 9))
	// 0.01 → ≤0.1; 0.3 (bucket ≤0.5) → ≤1; 2 (≤5) and 9 (+Inf) → +Inf.
	if want := []int64{2, 1, 2}; !slices.Equal(h.Counts, want) {
		t.Errorf("Counts = %v, want %v", h.Counts, want)
	}
}

func TestSubIsWhatHappenedBetweenTwoReadings(t *testing.T) {
	a := hist([]float64{0.1, 1}, 0.05)
	b := hist([]float64{0.1, 1}, 0.05, 0.5, 0.5)
	d := b.Sub(a)
	if want := []int64{0, 2, 0}; !slices.Equal(d.Counts, want) {
		t.Errorf("Counts = %v, want %v", d.Counts, want)
	}
	// A restarted pod's counter went down: the new reading is all there is.
	if r := a.Sub(b); !slices.Equal(r.Counts, a.Counts) {
		t.Errorf("after a reset Counts = %v, want %v", r.Counts, a.Counts)
	}
}

func TestWindowMergeAddsPods(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a := Window{Start: t0, End: t0.Add(5 * time.Minute), Pods: 1, Requests: 100, Errors: 5, InFlight: 2,
		Duration: hist(Bounds(), 0.01), Triggers: map[string]Trigger{"orders": {Delivered: 10, Pending: 3}}}
	b := Window{Start: t0.Add(time.Minute), End: t0.Add(5 * time.Minute), Requests: 200, Errors: 15, InFlight: 1,
		ColdStarts: 1, ColdStartWait: hist(Bounds(), 1.4), Triggers: map[string]Trigger{"orders": {Delivered: 5, Pending: 7}}}
	var w Window
	w.Merge(a)
	w.Merge(b)
	if w.Pods != 2 || w.Requests != 300 || w.Errors != 20 || w.InFlight != 3 || w.ColdStarts != 1 {
		t.Errorf("merged = %+v", w)
	}
	if !w.Start.Equal(t0) || w.Seconds() != 300 {
		t.Errorf("window = %v .. %v", w.Start, w.End)
	}
	if got := w.Rate(); got != 1 {
		t.Errorf("Rate = %v, want 1", got)
	}
	if got := w.ErrorRatio(); math.Abs(got-20.0/300) > 1e-12 {
		t.Errorf("ErrorRatio = %v", got)
	}
	if tr := w.Triggers["orders"]; tr.Delivered != 15 || tr.Pending != 7 {
		t.Errorf("trigger = %+v, want 15 delivered, 7 pending (the consumer is shared)", tr)
	}
	if w.Idle() {
		t.Error("a window with requests is not idle")
	}
	if !(Window{Start: t0, End: t0.Add(time.Minute)}).Idle() {
		t.Error("an empty window is idle")
	}
}

func TestWindowJSONRoundTrips(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	w := Window{Start: t0, End: t0.Add(time.Minute), Pods: 1, Requests: 3, Duration: hist(Bounds(), 0.002, 0.2, 2)}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var got Window
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Requests != 3 || got.Duration.Count() != 3 || got.Duration.Quantile(0.5) != w.Duration.Quantile(0.5) {
		t.Errorf("round trip = %s", b)
	}
}
