package clients

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// natsConn connects with opts and returns the connection and a channel
// for each disconnection's error: how nats.go tells its user that the
// connection died (it then reconnects on its own).
func natsConn(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	lost := make(chan error, 16)
	opts = append(opts, nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
		select {
		case lost <- err:
		default: // a test reads only the losses it waits for
		}
	}),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc, lost
}

// disconnected waits for the connection's next loss.
func disconnected(lost <-chan error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case err := <-lost:
			if err == nil {
				err = nats.ErrDisconnected
			}
			return err
		case <-ctx.Done():
			return nil // no loss: vanish reports no error
		}
	}
}

// recordingDialer is a nats.CustomDialer over a dial function.
type recordingDialer struct {
	dial func(context.Context, string, string) (net.Conn, error)
}

func (d recordingDialer) Dial(network, address string) (net.Conn, error) {
	return d.dial(context.Background(), network, address)
}

func TestNATS(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	url := "nats://" + startNATS(t, l).addr
	c, e := observed(kit(t))
	// The README's line: nats.go takes a dialer with a Dial method, and
	// its connect timeout (nats.Timeout) applies only to a dialer of its
	// own, so the kit's keeps it.
	d := c.ConnDialer()
	d.Timeout = nats.DefaultTimeout
	rec := &dialed{}
	nc, lost := natsConn(t, url, nats.SetCustomDialer(recordingDialer{rec.wrap(d.DialContext)}))
	settingsOnSocket(t, rec.last(t), c)
	sub, err := nc.SubscribeSync("updates")
	require.NoError(t, err)
	defer sub.Unsubscribe()
	next := func(ctx context.Context) error {
		deadline, _ := ctx.Deadline()
		for !nc.IsConnected() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return nc.FlushWithContext(ctx)
	}

	// Idle: a subscriber waiting for messages.
	vanish(t, l, c, e, false, disconnected(lost))
	restore(t, l, next)
	// Busy: a publisher sending into the silence.
	stop := make(chan struct{})
	var once sync.Once
	stopPublishing := func() { once.Do(func() { close(stop) }) }
	defer stopPublishing()
	vanish(t, l, c, e, true, func(ctx context.Context) error {
		go func() {
			big := make([]byte, 512<<10)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if nc.Publish("bulk", big) != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
		return disconnected(lost)(ctx)
	})
	stopPublishing()
	restore(t, l, next)
}

func TestNATSStock(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	url := "nats://" + startNATS(t, l).addr
	_, lost := natsConn(t, url)
	stockHangs(t, l, func(ctx context.Context) error {
		select {
		case err := <-lost:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil)
}
