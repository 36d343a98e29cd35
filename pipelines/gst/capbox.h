// capbox.h: the C side of pipelines/gst. The per-buffer path (pull a
// sample, copy buffer metadata, push into each output) and reads of boxed
// properties run in C, so no Go object with a finalizer is made per buffer.
#ifndef CAPBOX_H
#define CAPBOX_H

#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

typedef struct {
	GstClockTime pts, dts, duration;
	gboolean delta;
	gsize size;
} capbox_buf_info;

typedef struct { gint64 bytes; gint64 buffers; } capbox_counter;

typedef struct {
	guint64 seen;   // frames that went by (streaming thread only)
	guint64 judged; // frames sampled
	guint spread;   // brightest minus darkest sampled luma, 0-255
	guint mean;     // mean sampled luma, 0-255
} capbox_picture;

capbox_picture *capbox_watch_picture(GstElement *e, const char *padname);
void capbox_picture_read(capbox_picture *p, guint64 *judged, guint *spread, guint *mean);

typedef struct { gint64 bytes_sent; double rtt_ms; gint64 pkts_sent; gint64 pkts_lost; gint callers; } capbox_srt_stats;

GstBuffer *capbox_pull(GstElement *sink, GstCaps **caps, capbox_buf_info *info);
GstFlowReturn capbox_forward(GstElement *src, GstBuffer *b, gint64 offset, gboolean discont);
guint64 capbox_src_level(GstElement *src);
void capbox_src_caps(GstElement *src, GstCaps *caps);
GstFlowReturn capbox_src_eos(GstElement *src);
gboolean capbox_caps_equal(GstCaps *a, GstCaps *b);
void capbox_caps_unref(GstCaps *c);
void capbox_buffer_unref(GstBuffer *b);
GstBuffer *capbox_buffer_ref(GstBuffer *b);
GstCaps *capbox_caps_ref(GstCaps *c);
char *capbox_caps_string(GstCaps *c);
GstClockTime capbox_base_time(GstElement *e);
void capbox_use_system_clock(GstElement *pipeline);
GstClockTime capbox_clock_now(void);
gboolean capbox_request_keyframe(GstElement *sink);
capbox_counter *capbox_count_pad(GstElement *e, const char *padname);
gint64 capbox_counter_bytes(capbox_counter *c);
gint64 capbox_counter_buffers(capbox_counter *c);
void capbox_name_segments(GstElement *splitmux, const char *dir, const char *ext);
gboolean capbox_level(GstMessage *m, double *peak, double *rms);
gboolean capbox_srt_stats_get(GstElement *sink, capbox_srt_stats *out);
GstClockTime capbox_buf_pts(GstBuffer *b);
char *capbox_prop_string(GstElement *e, const char *name);
void capbox_wake_bus(GstElement *pipeline);
void capbox_eos_sources(GstElement *pipeline);
void capbox_sink_callbacks(GstElement *sink, guintptr id);
gboolean capbox_link_pads(GstElement *src, const char *srcpad, GstElement *sink, const char *sinkpad);

#endif
