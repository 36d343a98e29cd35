package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// A minimal V4L2 capture loop (MMAP buffers, never mapped: the frames are not looked at), to
// see the errno the queue gives when streaming fails. videodev2.h (6.1), 64-bit layout.
const (
	vidiocReqBufs   = 0xc0145608 // _IOWR('V', 8, struct v4l2_requestbuffers), 20 bytes
	vidiocQBuf      = 0xc058560f // _IOWR('V', 15, struct v4l2_buffer), 88 bytes
	vidiocDQBuf     = 0xc0585611 // _IOWR('V', 17, struct v4l2_buffer)
	vidiocStreamOn  = 0x40045612 // _IOW('V', 18, int)
	vidiocStreamOff = 0x40045613 // _IOW('V', 19, int)

	bufTypeVideoCapture = 1
	memoryMMAP          = 1
)

// capture streams from fd until stop is closed or an ioctl fails; frames counts what it
// dequeued. The returned error names the failing ioctl and wraps its errno.
type capture struct {
	fd     int
	frames int
}

func (c *capture) buf(index uint32) []byte {
	b := make([]byte, 88)
	binary.LittleEndian.PutUint32(b[0:], index)
	binary.LittleEndian.PutUint32(b[4:], bufTypeVideoCapture)
	binary.LittleEndian.PutUint32(b[60:], memoryMMAP)
	return b
}

func (c *capture) run(stop <-chan struct{}, started chan<- struct{}) error {
	req := make([]byte, 20)
	binary.LittleEndian.PutUint32(req[0:], 4)
	binary.LittleEndian.PutUint32(req[4:], bufTypeVideoCapture)
	binary.LittleEndian.PutUint32(req[8:], memoryMMAP)
	if err := ioctl(c.fd, vidiocReqBufs, req); err != nil {
		return fmt.Errorf("VIDIOC_REQBUFS: %w", err)
	}
	n := binary.LittleEndian.Uint32(req[0:])
	for i := uint32(0); i < n; i++ {
		if err := ioctl(c.fd, vidiocQBuf, c.buf(i)); err != nil {
			return fmt.Errorf("VIDIOC_QBUF: %w", err)
		}
	}
	typ := make([]byte, 4)
	binary.LittleEndian.PutUint32(typ, bufTypeVideoCapture)
	if err := ioctl(c.fd, vidiocStreamOn, typ); err != nil {
		return fmt.Errorf("VIDIOC_STREAMON: %w", err)
	}
	defer func() {
		_ = ioctl(c.fd, vidiocStreamOff, typ)
		req := make([]byte, 20)
		binary.LittleEndian.PutUint32(req[4:], bufTypeVideoCapture)
		binary.LittleEndian.PutUint32(req[8:], memoryMMAP)
		_ = ioctl(c.fd, vidiocReqBufs, req)
	}()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 200); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		b := c.buf(0)
		if err := ioctl(c.fd, vidiocDQBuf, b); err != nil {
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			return fmt.Errorf("VIDIOC_DQBUF: %w", err)
		}
		c.frames++
		if c.frames == 3 && started != nil {
			close(started)
		}
		if err := ioctl(c.fd, vidiocQBuf, b); err != nil {
			return fmt.Errorf("VIDIOC_QBUF: %w", err)
		}
	}
}

// streamUntilError streams from node in the background; the returned function waits (up to
// limit) for the loop to end and returns its error.
func streamUntilError(node string) (started <-chan struct{}, wait func(limit time.Duration) (int, error), err error) {
	fd, err := openDev(node)
	if err != nil {
		return nil, nil, err
	}
	c := &capture{fd: fd}
	st := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.run(stop, st) }()
	wait = func(limit time.Duration) (int, error) {
		defer unix.Close(fd)
		select {
		case err := <-done:
			return c.frames, err
		case <-time.After(limit):
			close(stop)
			<-done
			return c.frames, errors.New("still streaming")
		}
	}
	return st, wait, nil
}
