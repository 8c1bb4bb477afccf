package testutil

import (
	"strings"
	"testing"
	"time"
)

func TestProcKeepsStreamsApart(t *testing.T) {
	p := Start(t, "sh", "-c", "echo out; echo err >&2; exit 3")
	err := p.Wait(t, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Wait = %v, want exit status 3", err)
	}
	if p.Err() != err {
		t.Errorf("Err = %v after Wait returned %v", p.Err(), err)
	}
	if p.Stdout() != "out\n" || p.Stderr() != "err\n" {
		t.Errorf("stdout %q, stderr %q", p.Stdout(), p.Stderr())
	}
	if o := p.Output(); !strings.Contains(o, "out\n") || !strings.Contains(o, "err\n") {
		t.Errorf("output %q lacks a stream", o)
	}
}

func TestProcStopEndsTheGroup(t *testing.T) {
	// The shell's child sleeps on in the same group; Stop must end it too, or Wait would
	// hang on the inherited output pipe.
	p := Start(t, "sh", "-c", "sleep 60 & echo started; wait")
	WaitFor(t, 10*time.Second, "the shell to start its child", func() bool { return p.Stdout() == "started\n" })
	if p.Exited() || p.Err() != nil {
		t.Fatal("exited early")
	}
	done := make(chan struct{})
	go func() {
		p.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not end the process group")
	}
	if !p.Exited() {
		t.Error("not exited after Stop")
	}
}

func TestLogDropsLinesAfterTheTest(t *testing.T) {
	var log func()
	t.Run("inner", func(t *testing.T) {
		l := Log(t)
		l.Info("during the test")
		log = func() { l.Info("after the test") }
	})
	log() // t.Log would panic here
}

func TestLastOfEachLine(t *testing.T) {
	if got := lastOfEachLine("a\r b\r c\nd\n"); got != " c\nd\n" {
		t.Errorf("got %q", got)
	}
}
