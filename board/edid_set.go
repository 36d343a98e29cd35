package board

// SetEDID loads an EDID into an HDMI receiver (VIDIOC_S_EDID, pad 0). A
// nil or empty EDID clears it, which makes the receiver pull hot-plug low.
// The device is a capture node (/dev/videoN, unicam, vivid) or a subdev
// (/dev/v4l-subdevN on a media-controller board such as the Pi 5); both
// take the same ioctl. Errors match the board sentinels (ErrGone...).
func SetEDID(device string, edid []byte) error { return setEDID(openNode, device, edid) }

func setEDID(open opener, device string, edid []byte) error {
	if len(edid) > 0 {
		if err := ValidateEDID(edid); err != nil {
			return err
		}
	}
	d, err := open(device)
	if err != nil {
		return deviceError("open", device, err)
	}
	defer d.Close()
	return deviceError("VIDIOC_S_EDID", device, d.SetEDID(0, edid))
}

// ReadEDID returns the EDID a receiver currently presents (VIDIOC_G_EDID,
// pad 0); nil when none is loaded.
func ReadEDID(device string) ([]byte, error) { return readEDID(openNode, device) }

func readEDID(open opener, device string) ([]byte, error) {
	d, err := open(device)
	if err != nil {
		return nil, deviceError("open", device, err)
	}
	defer d.Close()
	n, err := d.EDIDBlocks(0)
	if err != nil {
		return nil, deviceError("VIDIOC_G_EDID", device, err)
	}
	if n > 256 {
		n = 256
	}
	b, err := d.GetEDID(0, n)
	return b, deviceError("VIDIOC_G_EDID", device, err)
}

// ApplyEDID loads edid into every HDMI receiver detection found (inputs
// that answered G_EDID), as the agent does at start and after every
// hotplug: without an EDID a source sees hot-plug low and never sends.
// It returns the devices set and the joined errors of the others.
func ApplyEDID(d Detection, edid []byte) ([]string, error) { return applyEDID(openNode, d, edid) }

func applyEDID(open opener, d Detection, edid []byte) ([]string, error) {
	var done []string
	var errs []error
	for _, in := range d.VideoInputs {
		if !in.EDID {
			continue
		}
		if err := setEDID(open, in.Device, edid); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, in.Device)
	}
	return done, joinErrs(errs)
}
