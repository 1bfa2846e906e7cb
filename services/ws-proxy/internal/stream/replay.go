package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"
	"github.com/honeybee/core/proto/bus"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/honeybee/core/services/ws-proxy/internal/hub"
)

// errWrite is returned by replay when writing to the client failed.
var errWrite = errors.New("write to client")

// maxReplaySubjects bounds the subject filters of a replay consumer; a
// filter that needs more replays every event and filters in process.
const maxReplaySubjects = 64

// replay writes every event after since that matches f, then hands over to
// the live feed with no gap and no duplicate:
//
//  1. Read an ordered consumer from since+1 while the client is registered
//     but skips live events, until the replay has caught up with the
//     stream's last sequence as of the start (or the stream has no more).
//  2. StartBuffering: from now on live events queue up (held), and H is
//     the last event the live feed published before that. Every event
//     after H reaches the queue.
//  3. Keep reading the replay until it has passed H (or has nothing more,
//     which, since the fetch comes after H was stored, means past H too).
//  4. The caller releases the queue, dropping events at or below the last
//     sequence the replay examined, queued or still to come (the live
//     feed may lag behind the replay): those were written (or did not
//     match) already.
//
// It returns that last examined sequence and the number of events written.
func (h *Handler) replay(ctx context.Context, conn *websocket.Conn, c *hub.Client, f *hub.Filter, since uint64) (uint64, int, error) {
	if f.Types&hub.KindEvent == 0 {
		return 0, 0, nil
	}
	name := h.Bus.EventsStream()
	st, err := h.JS.Stream(ctx, name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up %s: %w", name, err)
	}
	head := st.CachedInfo().State.LastSeq
	cons, err := h.JS.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{
		FilterSubjects:    replaySubjects(h.Bus, f),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       since + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("replay consumer: %w", err)
	}
	defer func() {
		// The ordered consumer deletes the consumers it replaces; this is
		// the last one.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if info := cons.CachedInfo(); info != nil {
			_ = h.JS.DeleteConsumer(ctx, name, info.Name)
		}
	}()

	batchSize := h.ReplayBatch
	if batchSize <= 0 {
		batchSize = 256
	}
	examined, written := since, 0
	buffering, boundary := false, uint64(0)
	for {
		if err := ctx.Err(); err != nil {
			return 0, written, err
		}
		batch, err := cons.FetchNoWait(batchSize)
		if err != nil {
			return 0, written, fmt.Errorf("replay fetch: %w", err)
		}
		n := 0
		var werr error
		for msg := range batch.Messages() {
			n++
			if werr != nil {
				continue // drain the batch
			}
			meta, err := msg.Metadata()
			if err != nil {
				werr = fmt.Errorf("replay metadata: %w", err)
				continue
			}
			seq := meta.Sequence.Stream
			examined = seq
			fr, err := hub.EventFrame(seq, msg.Data())
			if err != nil || !f.Match(fr) {
				continue
			}
			if err := h.write(ctx, conn, fr.Data); err != nil {
				werr = fmt.Errorf("%w: %w", errWrite, err)
			} else {
				written++
			}
		}
		if werr != nil {
			return 0, written, werr
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return 0, written, fmt.Errorf("replay fetch: %w", err)
		}
		if !buffering {
			if n > 0 && examined < head {
				continue
			}
			buffering, boundary = true, c.StartBuffering()
			if examined >= boundary {
				return examined, written, nil
			}
			continue // the fetch that ends step 3 must come after H
		}
		if n == 0 || examined >= boundary {
			return examined, written, nil
		}
	}
}

// replaySubjects narrows the replay consumer to the subjects f can match.
func replaySubjects(c bus.Contract, f *hub.Filter) []string {
	var subs []string
	switch {
	case len(f.NodeIDs) > 0 && len(f.PotIDs) > 0:
		for _, n := range f.NodeIDs {
			for _, p := range f.PotIDs {
				subs = append(subs, c.Event(n, p))
			}
		}
	case len(f.NodeIDs) > 0:
		for _, n := range f.NodeIDs {
			subs = append(subs, c.EventsOf(n, nil))
		}
	case len(f.PotIDs) > 0:
		for _, p := range f.PotIDs {
			subs = append(subs, c.EventsOfPot(p))
		}
	}
	if len(subs) == 0 || len(subs) > maxReplaySubjects {
		return []string{c.Events()}
	}
	return subs
}
