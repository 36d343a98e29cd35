package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"capbox/agent/fleet/wire"
)

// Bounds of the command requests.
const (
	// acceptedAfter: a command still running after this is answered
	// "accepted" first, so the operator knows it arrived.
	acceptedAfter = time.Second
	// maxRunning bounds the box commands running at once.
	maxRunning = 4
	// maxMsgLen bounds the msg text of a response.
	maxMsgLen = 512
)

// commands are the requests being answered.
type commands struct {
	seen    *dedup // request ids with their first answer
	running int    // box commands running, at most maxRunning
}

func (l *Link) respond(name string, res wire.CmdResponse) {
	if len(res.Msg) > maxMsgLen {
		res.Msg = res.Msg[:maxMsgLen]
	}
	if !wire.ValidName(name) {
		return
	}
	l.out.push(&outMsg{suffix: wire.TopicCmdResPrefix + name, qos: 1, body: &res})
}

// onCommand answers one request: refusals, duplicates and the link's own
// commands at once; a box command off the loop (runCommand).
func (l *Link) onCommand(ctx context.Context, name string, payload []byte) {
	if !wire.ValidName(name) {
		l.log.Debug("request with an invalid command name ignored")
		return
	}
	req, err := wire.DecodeRequest(payload)
	if err != nil {
		l.log.Info("bad command request", "cmd", name, "id", req.ID, "err", err)
		l.respond(name, wire.CmdResponse{ID: req.ID, Status: wire.ResError, Code: wire.CodeFor(err), Msg: err.Error()})
		return
	}
	if name == wire.CmdWatch {
		l.onWatch(ctx, req)
		return
	}
	if r := l.cmds.seen.seen(name, req.ID); r != nil {
		res := wire.CmdResponse{ID: req.ID, Status: wire.ResDuplicate}
		if r.pending {
			res.Msg = "the first request with this id is still running"
		} else {
			res.FirstStatus, res.Code, res.Msg, res.Result = r.res.Status, r.res.Code, r.res.Msg, r.res.Result
		}
		l.respond(name, res)
		return
	}
	final := func(res wire.CmdResponse) {
		res.ID = req.ID
		l.cmds.seen.done(name, req.ID, res)
		l.respond(name, res)
	}
	if req.Exp > 0 && time.Now().UnixMilli() > req.Exp {
		final(wire.CmdResponse{Status: wire.ResExpired, Code: wire.CodeExpired, Msg: "request expired before it arrived"})
		return
	}
	spec, ok := wire.LookupCommand(name)
	if !ok || (spec.Box && !slices.Contains(l.meta().Commands, name)) {
		final(wire.CmdResponse{Status: wire.ResUnsupported, Code: wire.CodeUnsupported, Msg: fmt.Sprintf("this box has no command %q", name)})
		return
	}
	args, err := wire.DecodeArgs(spec, req.Args)
	if err != nil {
		final(wire.CmdResponse{Status: wire.ResError, Code: wire.CodeBadArgs, Msg: err.Error()})
		return
	}
	l.log.Info("fleet command", "cmd", name, "id", req.ID)
	switch name {
	case wire.CmdPing:
		res, _ := json.Marshal(map[string]any{"pong": true, "sess": l.mqtt.sess, "ts": time.Now().UnixMilli()})
		final(wire.CmdResponse{Status: wire.ResOK, Result: res})
		return
	case wire.CmdRebirth:
		l.rebirth()
		final(wire.CmdResponse{Status: wire.ResOK})
		return
	}
	if l.cmds.running >= maxRunning {
		l.cmds.seen.forget(name, req.ID) // busy is no answer to remember: a resend may run
		l.respond(name, wire.CmdResponse{ID: req.ID, Status: wire.ResRejected, Code: wire.CodeBusy,
			Msg: fmt.Sprintf("%d commands already running", l.cmds.running)})
		return
	}
	l.cmds.running++
	l.mail.workers.Add(1)
	go l.runCommand(ctx, spec, req.ID, args)
}

// runCommand runs one box command off the loop, answering "accepted" when
// it takes longer than acceptedAfter.
func (l *Link) runCommand(ctx context.Context, spec wire.CommandSpec, id string, args wire.Args) {
	defer l.mail.workers.Done()
	cctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	type out struct {
		r   Result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, err := l.box.Command(cctx, spec.Name, args)
		ch <- out{r, err}
	}()
	acc := time.NewTimer(acceptedAfter)
	defer acc.Stop()
	var o out
	select {
	case o = <-ch:
	case <-acc.C:
		l.mail.work.Post(func() { l.respond(spec.Name, wire.CmdResponse{ID: id, Status: wire.ResAccepted}) })
		o = <-ch
	}
	if o.err == nil && cctx.Err() != nil {
		o.err = cctx.Err()
	}
	l.mail.work.Post(func() { l.onCommandDone(spec.Name, id, o.r, o.err) })
}

// onCommandDone answers a finished box command and does what its success
// implies for the link.
func (l *Link) onCommandDone(name, id string, r Result, err error) {
	l.cmds.running--
	res := commandResponse(r, err)
	res.ID = id
	l.cmds.seen.done(name, id, res)
	l.respond(name, res)
	l.log.Info("fleet command done", "cmd", name, "id", id, "status", res.Status, "code", res.Code)
	if res.Status != wire.ResOK {
		return
	}
	switch name {
	case wire.CmdDetect:
		meta := l.meta()
		l.out.pushRetained(wire.TopicMeta, &meta)
	case wire.CmdReboot:
		l.SetStopReason(wire.ReasonReboot)
	}
}

// commandResponse turns a box result or error into the answer.
func commandResponse(r Result, err error) wire.CmdResponse {
	if err != nil {
		var ce *CommandError
		switch {
		case errors.As(err, &ce):
			st := ce.Status
			if st == "" {
				st = wire.ResError
			}
			return wire.CmdResponse{Status: st, Code: ce.Code, Msg: ce.Msg}
		case errors.Is(err, ErrUnsupported):
			return wire.CmdResponse{Status: wire.ResUnsupported, Code: wire.CodeUnsupported, Msg: err.Error()}
		case errors.Is(err, context.DeadlineExceeded):
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTimeout, Msg: "the box did not finish in time"}
		case errors.Is(err, context.Canceled):
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeShutdown, Msg: "the agent is stopping"}
		}
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeFailed, Msg: err.Error()}
	}
	var result any
	switch {
	case r.JPEG != nil:
		if len(r.JPEG) > wire.MaxSnapshotJPEG {
			return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTooLarge,
				Msg: fmt.Sprintf("snapshot is %d bytes, over %d", len(r.JPEG), wire.MaxSnapshotJPEG)}
		}
		result = wire.SnapshotResult{JPEG: r.JPEG, Bytes: len(r.JPEG)}
	case r.Data != nil:
		result = r.Data
	default:
		return wire.CmdResponse{Status: wire.ResOK}
	}
	b, err := json.Marshal(result)
	if err != nil {
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeInternal, Msg: "result not encodable"}
	}
	if len(b) > wire.MaxPayload-1024 {
		return wire.CmdResponse{Status: wire.ResError, Code: wire.CodeTooLarge, Msg: fmt.Sprintf("result is %d bytes, over the payload limit", len(b))}
	}
	return wire.CmdResponse{Status: wire.ResOK, Result: b}
}
