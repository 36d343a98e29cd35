#!/usr/bin/python3
"""An RTSP server that takes a published stream (RECORD), decodes it and
reports what it got, twice a second, one line per stream:

    video 1280x720 frames=150
    audio frames=200

Tests run it with Debian's GStreamer RTSP server (python3-gi,
gir1.2-gst-rtsp-server-1.0).  usage: rtsp-record.py PORT MOUNT"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port, mount = sys.argv[1], sys.argv[2]
counts = {}  # "video 1280x720" or "audio" -> buffers decoded


def count(pad, info):
    caps = pad.get_current_caps()
    if caps is None:
        return Gst.PadProbeReturn.OK
    s = caps.get_structure(0)
    if s.get_name().startswith("video/"):
        key = "video %dx%d" % (s.get_value("width"), s.get_value("height"))
    else:
        key = "audio"
    counts[key] = counts.get(key, 0) + 1
    return Gst.PadProbeReturn.OK


def on_configure(factory, media):
    bin_ = media.get_element()
    for i in range(2):
        sink = bin_.get_by_name("out%d" % i)
        if sink is not None:
            sink.get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, count)


def report():
    for k, n in sorted(counts.items()):
        print("%s frames=%d" % (k, n), flush=True)
    return True


factory = GstRtspServer.RTSPMediaFactory()
factory.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
# Each stream is decoded whatever it is: decodebin picks the depayloader.
factory.set_launch("( decodebin name=depay0 ! fakesink name=out0 sync=false  "
                   "decodebin name=depay1 ! fakesink name=out1 sync=false )")
factory.connect("media-configure", on_configure)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
server.get_mount_points().add_factory("/" + mount, factory)
server.attach(None)
GLib.timeout_add(500, report)
print("listening", flush=True)
GLib.MainLoop().run()
