package loop

import (
	"context"
	"errors"
	"testing"
	"time"
)

// run is a minimal owner: it runs closures until stop is closed, then
// stops the loop and drains it, as the agent and the engine do.
func run(l *Loop, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-l.C():
				f()
			case <-stop:
				l.Stop()
				l.Drain()
				return
			}
		}
	}()
	return done
}

func TestDoRunsOnTheLoopAndReturnsItsError(t *testing.T) {
	l := New(1)
	stop := make(chan struct{})
	done := run(l, stop)
	defer func() { close(stop); <-done }()

	want := errors.New("refused")
	if err := l.Do(context.Background(), func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("Do = %v, want %v", err, want)
	}
	ran := make(chan struct{})
	if !l.Post(func() { close(ran) }) {
		t.Fatal("Post refused on a running loop")
	}
	<-ran
}

func TestStoppedLoopRefusesAtOnce(t *testing.T) {
	l := New(0)
	stop := make(chan struct{})
	done := run(l, stop)
	close(stop)
	<-done

	if l.Post(func() { t.Error("a closure ran after the stop") }) {
		t.Fatal("Post accepted work after the stop")
	}
	if err := l.Do(context.Background(), func() error { return nil }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after the stop = %v, want ErrStopped", err)
	}
	select {
	case <-l.Stopped():
	default:
		t.Fatal("Stopped() not closed after Stop")
	}
}

// A stopped loop whose queue has room still refuses: nothing would run
// what it took.
func TestStoppedLoopWithRoomRefusesAtOnce(t *testing.T) {
	l := New(16)
	stop := make(chan struct{})
	done := run(l, stop)
	close(stop)
	<-done

	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := l.Do(ctx, func() error { return nil })
		cancel()
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("Do %d after the stop = %v, want ErrStopped", i, err)
		}
	}
	if n := len(l.work); n != 0 {
		t.Fatalf("%d closures queued after the stop", n)
	}
}

func TestDoGivesUpWhenItsContextEnds(t *testing.T) {
	l := New(0) // nobody runs the loop: Do can only end by its context
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Do(ctx, func() error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v, want DeadlineExceeded", err)
	}
}

func TestDrainAnswersCallersQueuedBeforeTheStop(t *testing.T) {
	l := New(4)
	answered := make(chan error, 1)
	go func() { answered <- l.Do(context.Background(), func() error { return nil }) }()
	for len(l.work) == 0 {
		time.Sleep(time.Millisecond)
	}
	l.Stop()
	l.Drain()
	if err := <-answered; err != nil {
		t.Fatalf("a caller queued before the stop got %v, want its answer", err)
	}
}

func TestTryPostNeverBlocks(t *testing.T) {
	l := New(1) // nobody runs the loop: the queue fills and stays full
	if !l.TryPost(func() {}) {
		t.Fatal("TryPost refused on an empty queue")
	}
	if l.TryPost(func() { t.Error("a closure beyond the queue's depth ran") }) {
		t.Fatal("TryPost queued beyond the queue's depth")
	}
	l.Drain()
	l.Stop()
	if l.TryPost(func() { t.Error("a closure ran after the stop") }) {
		t.Fatal("TryPost accepted work after the stop")
	}
	l.Drain()
}
