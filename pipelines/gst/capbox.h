// capbox.h: the C side of pipelines/gst. The per-buffer path (the hub:
// pull a sample, copy buffer metadata, push into each output) and reads of
// boxed properties run in C, so nothing per buffer enters Go.
#ifndef CAPBOX_H
#define CAPBOX_H

#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

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

GstFlowReturn capbox_forward(GstElement *src, GstBuffer *b, gint64 offset, gboolean discont);
void capbox_src_caps(GstElement *src, GstCaps *caps);
GstFlowReturn capbox_src_eos(GstElement *src);
gboolean capbox_caps_equal(GstCaps *a, GstCaps *b);
void capbox_caps_unref(GstCaps *c);
void capbox_buffer_unref(GstBuffer *b);
char *capbox_caps_string(GstCaps *c);
GstClockTime capbox_base_time(GstElement *e);
void capbox_use_system_clock(GstElement *pipeline);
GstClockTime capbox_clock_now(void);
gboolean capbox_request_keyframe(GstElement *sink);
capbox_counter *capbox_count_pad(GstElement *e, const char *padname);
gint64 capbox_counter_bytes(capbox_counter *c);
gint64 capbox_counter_buffers(capbox_counter *c);
void capbox_name_segments(GstElement *splitmux, const char *dir, const char *ext, guint64 first_seq);
gboolean capbox_level(GstMessage *m, double *peak, double *rms);
gboolean capbox_srt_stats_get(GstElement *sink, capbox_srt_stats *out);
GstClockTime capbox_buf_pts(GstBuffer *b);
char *capbox_prop_string(GstElement *e, const char *name);
void capbox_wake_bus(GstElement *pipeline);
void capbox_eos_sources(GstElement *pipeline);
char *capbox_not_playing(GstElement *pipeline);
gboolean capbox_link_pads(GstElement *src, const char *srcpad, GstElement *sink, const char *sinkpad);

// The hub (hub.c): fronts' encoded buffers to every output, in C.
enum { CAPBOX_VIDEO = 0, CAPBOX_AUDIO = 1 };
typedef struct capbox_hub capbox_hub;
typedef struct capbox_front capbox_front;
typedef struct capbox_out capbox_out;
typedef struct { guint64 frames, bytes; gint64 last_wall_us; guintptr active; } capbox_track_stats;

capbox_hub *capbox_hub_new(guintptr id);
void capbox_hub_close(capbox_hub *h);
capbox_front *capbox_front_new(capbox_hub *h, GstElement *sink, gint track, guintptr id);
void capbox_front_release(capbox_front *f);
void capbox_hub_set_pending(capbox_hub *h, capbox_front *f);
void capbox_hub_detach(capbox_hub *h, capbox_front *f);
guintptr capbox_hub_active(capbox_hub *h, gint track);
capbox_out *capbox_hub_add_out(capbox_hub *h, GstElement *vsrc, GstElement *asrc, gint64 base, guint64 limit);
void capbox_hub_remove_out(capbox_hub *h, capbox_out *o);
guint64 capbox_hub_dropped(capbox_hub *h, capbox_out *o);
void capbox_hub_track_stats(capbox_hub *h, gint track, capbox_track_stats *out);
GstBuffer *capbox_hub_keyframe(capbox_hub *h, GstCaps **caps);

#endif
