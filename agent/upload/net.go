package upload

import (
	"net"
	"net/http"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// notSentLowat bounds what waits unsent in an upload socket's kernel
// buffer (TCP_NOTSENT_LOWAT). Without it the kernel queues megabytes, and
// a cut in the uploads' rate reaches the link only seconds later, while
// the live stream suffers.
const notSentLowat = 128 << 10

// shallowDialer dials upload connections with a shallow send queue.
func shallowDialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
			})
			if err != nil {
				return err
			}
			// A kernel without the option still uploads, only less gently.
			_ = serr
			return nil
		}}
}

// shallowTransport is the S3 transport: the given one (or Go's default)
// dialing through shallowDialer.
func shallowTransport(rt http.RoundTripper) http.RoundTripper {
	var t *http.Transport
	switch v := rt.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = v.Clone()
	default:
		return rt
	}
	t.DialContext = shallowDialer(30 * time.Second).DialContext
	return t
}
