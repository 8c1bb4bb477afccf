package main

import "testing"

// The policy goes down to one P only after procsCalm quiet samples in a row, back up to
// the default at the first busy one, and stays put in between.
func TestProcsPolicy(t *testing.T) {
	p := procsPolicy{max: 4, cur: 4}
	steps := []struct {
		cores float64
		want  int
	}{
		{0.1, 4}, {0.1, 4}, {0.1, 4}, {0.1, 4}, {0.1, 1}, // five quiet seconds
		{0.5, 1}, {0.2, 1}, // in between: no change
		{0.9, 4},                                         // busy: all of them at once
		{0.1, 4}, {0.1, 4}, {0.5, 4}, {0.1, 4}, {0.1, 4}, // the calm count starts over
		{0.1, 4}, {0.1, 4}, {0.1, 1},
		{1.0, 4},
	}
	for i, s := range steps {
		if got := p.next(s.cores); got != s.want {
			t.Fatalf("step %d (%.1f cores): GOMAXPROCS %d, want %d", i, s.cores, got, s.want)
		}
	}
}
