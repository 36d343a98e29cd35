package agent

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"capbox/agent/config"
	"capbox/agent/fleet/wire"
	"capbox/agent/health"
	"capbox/board"
	"capbox/pipelines"
)

// A pipeline whose teardown hangs (a capture stuck in its driver) does not
// hold the agent past its stop budget: Run returns within it, leaving the
// part behind, so systemd never has to kill the box.
func TestShutdownEndsWithinItsBudgetWhileAPartHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := testSourceRig(t)
		synctest.Wait()
		rt := r.rt()
		hang := make(chan struct{})
		rt.mu.Lock()
		rt.hang = hang
		rt.mu.Unlock()

		start := time.Now()
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(time.Hour):
			t.Fatal("Run never returned")
		}
		if took := time.Since(start); took > stopBudget {
			t.Errorf("shutdown took %s with a hung pipeline, budget %s", took, stopBudget)
		} else if took < stopBudget {
			t.Errorf("shutdown took %s: it did not wait for the pipeline at all (budget %s)", took, stopBudget)
		}
		close(hang) // let the abandoned part go, for the leak check
		synctest.Wait()
	})
}

// Detection that takes long (a driver slow to answer, up to 20 s on a box)
// runs beside the loop: the agent answers the fleet and publishes its state
// meanwhile, and starts the pipeline when detection is done.
func TestSlowDetectionDoesNotHoldTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		cfg := config.Default()
		cfg.Capture.Video = "test"
		var runtimes []*fakeRuntime
		a := New(cfg, Deps{
			Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
			Detect: func(ctx context.Context, _ config.Config) (board.Detection, error) {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return board.Detection{}, nil
			},
			NewRuntime: func(p pipelines.Plan, _ *slog.Logger) Runtime {
				f := &fakeRuntime{plan: p, events: make(chan pipelines.Event, 16), crash: make(chan error, 1)}
				runtimes = append(runtimes, f)
				return f
			},
			Health:   health.New(health.Options{Sys: fakeSys{}, Net: fakeNet{}, Logger: slog.New(slog.DiscardHandler)}),
			StateDir: t.TempDir(),
			Root:     t.TempDir(),
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		time.Sleep(15 * time.Second)
		synctest.Wait()

		answered := make(chan error, 1)
		go func() {
			_, err := box{a}.Command(context.Background(), wire.CmdSetLogLevel, wire.Args{Level: "debug"})
			answered <- err
		}()
		select {
		case err := <-answered:
			if err != nil {
				t.Errorf("set_log_level while detecting: %v", err)
			}
		case <-time.After(time.Second):
			t.Error("a command waited for the detection")
		}
		if st := a.pub.State(); st.Mode != wire.ModeStarting || len(runtimes) != 0 {
			t.Errorf("while detecting: %d runtimes, state %+v", len(runtimes), st)
		}
		close(release)
		synctest.Wait()
		if len(runtimes) != 1 {
			t.Errorf("after the detection: %d runtimes, want 1", len(runtimes))
		}
		cancel()
		<-done
	})
}
