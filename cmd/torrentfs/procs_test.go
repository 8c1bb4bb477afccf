package main

import "testing"

// The policy goes down to one P only after procsCalm quiet samples in a row, up to the
// default at the first busy one, and stays put in between.
func TestProcsPolicy(t *testing.T) {
	p := procsPolicy{max: 4, cur: 1}
	type step struct {
		cores float64
		want  int
	}
	calm := func(n int, cores float64, want int) []step {
		var s []step
		for range n {
			s = append(s, step{cores, want})
		}
		return s
	}
	var steps []step
	steps = append(steps, step{0.3, 1}, step{0.6, 1}) // starts at one P; half a core fits
	steps = append(steps, step{0.9, 4})               // busy: all of them at once
	steps = append(steps, calm(procsCalm-1, 0.1, 4)...)
	steps = append(steps, step{0.6, 4}) // not quiet: the calm count starts over
	steps = append(steps, calm(procsCalm-1, 0.2, 4)...)
	steps = append(steps, step{0.2, 1}) // procsCalm quiet samples in a row
	steps = append(steps, step{0.7, 1}, step{0.1, 1}, step{1.5, 4})
	for i, s := range steps {
		if got := p.next(s.cores); got != s.want {
			t.Fatalf("step %d (%.1f cores): GOMAXPROCS %d, want %d", i, s.cores, got, s.want)
		}
	}
}
