// C side of the per-buffer path and of boxed-property reads; see capbox.h.
#include "capbox.h"
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <math.h>

// Pushing into an appsrc runs here, in C: going through go-gst's wrappers
// would allocate Go objects with finalizers per buffer and keep C memory
// alive until a GC. The hub that calls it is in hub.c.

// capbox_forward pushes a metadata copy of b into src with its timestamps
// moved by offset ns (from the front's clock base to the output's).
GstFlowReturn capbox_forward(GstElement *src, GstBuffer *b, gint64 offset, gboolean discont) {
	GstBuffer *c = gst_buffer_copy(b);
	if (GST_BUFFER_PTS_IS_VALID(c)) {
		gint64 p = (gint64)GST_BUFFER_PTS(c) + offset;
		if (p < 0) { gst_buffer_unref(c); return GST_FLOW_OK; }
		GST_BUFFER_PTS(c) = (GstClockTime)p;
	}
	if (GST_BUFFER_DTS_IS_VALID(c)) {
		gint64 d = (gint64)GST_BUFFER_DTS(c) + offset;
		GST_BUFFER_DTS(c) = d < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)d;
	}
	if (discont) GST_BUFFER_FLAG_SET(c, GST_BUFFER_FLAG_DISCONT);
	return gst_app_src_push_buffer(GST_APP_SRC(src), c);
}

void capbox_src_caps(GstElement *src, GstCaps *caps) {
	gst_app_src_set_caps(GST_APP_SRC(src), caps);
}

GstFlowReturn capbox_src_eos(GstElement *src) {
	return gst_app_src_end_of_stream(GST_APP_SRC(src));
}

gboolean capbox_caps_equal(GstCaps *a, GstCaps *b) {
	if (a == b) return TRUE;
	if (a == NULL || b == NULL) return FALSE;
	return gst_caps_is_equal(a, b);
}

void capbox_caps_unref(GstCaps *c) { if (c) gst_caps_unref(c); }
void capbox_buffer_unref(GstBuffer *b) { if (b) gst_buffer_unref(b); }

char *capbox_caps_string(GstCaps *c) { return c ? gst_caps_to_string(c) : NULL; }

GstClockTime capbox_base_time(GstElement *e) { return gst_element_get_base_time(e); }

void capbox_use_system_clock(GstElement *pipeline) {
	GstClock *clk = gst_system_clock_obtain();
	gst_pipeline_use_clock(GST_PIPELINE(pipeline), clk);
	gst_object_unref(clk);
}

GstClockTime capbox_clock_now(void) {
	GstClock *clk = gst_system_clock_obtain();
	GstClockTime t = gst_clock_get_time(clk);
	gst_object_unref(clk);
	return t;
}

// capbox_request_keyframe asks the encoder upstream of an appsink for a
// keyframe (with SPS/PPS), so a (re)started output starts quickly.
gboolean capbox_request_keyframe(GstElement *sink) {
	GstPad *pad = gst_element_get_static_pad(sink, "sink");
	if (pad == NULL) return FALSE;
	GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0);
	gboolean ok = gst_pad_push_event(pad, ev); // from a sink pad: upstream
	gst_object_unref(pad);
	return ok;
}

// Byte counters on a pad, updated from the streaming thread.

static GstPadProbeReturn capbox_count_cb(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
	capbox_counter *c = data;
	gsize n = 0;
	if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
		n = gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
		__atomic_add_fetch(&c->buffers, 1, __ATOMIC_RELAXED);
	} else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
		GstBufferList *l = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
		n = gst_buffer_list_calculate_size(l);
		__atomic_add_fetch(&c->buffers, (gint64)gst_buffer_list_length(l), __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&c->bytes, (gint64)n, __ATOMIC_RELAXED);
	return GST_PAD_PROBE_OK;
}

capbox_counter *capbox_count_pad(GstElement *e, const char *padname) {
	GstPad *pad = gst_element_get_static_pad(e, padname);
	if (pad == NULL) return NULL;
	capbox_counter *c = g_new0(capbox_counter, 1);
	gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, capbox_count_cb, c, g_free);
	gst_object_unref(pad);
	return c;
}

gint64 capbox_counter_bytes(capbox_counter *c) { return __atomic_load_n(&c->bytes, __ATOMIC_RELAXED); }
gint64 capbox_counter_buffers(capbox_counter *c) { return __atomic_load_n(&c->buffers, __ATOMIC_RELAXED); }

// Picture watch: a buffer probe on the raw video going into the encoder
// that reads the luma of every other pixel of every fourth row in one
// frame of five (dense enough that a line of small text on a dark slide
// is not missed) and keeps its spread (brightest minus darkest) and mean.
// A dongle without a signal sends a flat picture (black, or a plain blue
// screen): a spread of a few steps; anything a laptop shows spreads wider.

static GstPadProbeReturn capbox_picture_cb(GstPad *pad, GstPadProbeInfo *info, gpointer data) {
	capbox_picture *p = data;
	GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
	if (buf == NULL || (p->seen++ % 5) != 0) return GST_PAD_PROBE_OK;
	GstCaps *caps = gst_pad_get_current_caps(pad);
	if (caps == NULL) return GST_PAD_PROBE_OK;
	GstVideoInfo vi;
	gboolean ok = gst_video_info_from_caps(&vi, caps);
	gst_caps_unref(caps);
	if (!ok) return GST_PAD_PROBE_OK;
	const GstVideoFormatInfo *fi = vi.finfo;
	// Luma is component 0 of a YUV format; of RGB, green stands in for it.
	int comp = GST_VIDEO_FORMAT_INFO_IS_YUV(fi) ? 0 : 1;
	if (GST_VIDEO_FORMAT_INFO_IS_TILED(fi) || GST_VIDEO_FORMAT_INFO_DEPTH(fi, comp) != 8 ||
	    GST_VIDEO_FORMAT_INFO_N_COMPONENTS(fi) <= comp) {
		return GST_PAD_PROBE_OK;
	}
	GstVideoFrame frame;
	if (!gst_video_frame_map(&frame, &vi, buf, GST_MAP_READ)) return GST_PAD_PROBE_OK;
	int plane = GST_VIDEO_FORMAT_INFO_PLANE(fi, comp);
	const guint8 *px = GST_VIDEO_FRAME_PLANE_DATA(&frame, plane);
	int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, plane);
	int pstride = GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, comp);
	int poffset = GST_VIDEO_FRAME_COMP_POFFSET(&frame, comp);
	int w = GST_VIDEO_FRAME_COMP_WIDTH(&frame, comp), h = GST_VIDEO_FRAME_COMP_HEIGHT(&frame, comp);
	guint lo = 255, hi = 0;
	guint64 sum = 0, n = 0;
	for (int y = 1; y < h; y += 4) {
		const guint8 *row = px + (gsize)y * stride + poffset;
		for (int x = 0; x < w; x += 2) {
			guint v = row[(gsize)x * pstride];
			lo = MIN(lo, v);
			hi = MAX(hi, v);
			sum += v;
		}
		n += (w + 1) / 2;
	}
	gst_video_frame_unmap(&frame);
	if (n == 0) return GST_PAD_PROBE_OK;
	__atomic_store_n(&p->spread, hi - lo, __ATOMIC_RELAXED);
	__atomic_store_n(&p->mean, (guint)(sum / n), __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->judged, 1, __ATOMIC_RELEASE);
	return GST_PAD_PROBE_OK;
}

// capbox_watch_picture watches what reaches padname of e; the watch is
// freed with the pad, so it is read only while its pipeline lives.
capbox_picture *capbox_watch_picture(GstElement *e, const char *padname) {
	GstPad *pad = gst_element_get_static_pad(e, padname);
	if (pad == NULL) return NULL;
	capbox_picture *p = g_new0(capbox_picture, 1);
	gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, capbox_picture_cb, p, g_free);
	gst_object_unref(pad);
	return p;
}

void capbox_picture_read(capbox_picture *p, guint64 *judged, guint *spread, guint *mean) {
	*judged = __atomic_load_n(&p->judged, __ATOMIC_ACQUIRE);
	*spread = __atomic_load_n(&p->spread, __ATOMIC_RELAXED);
	*mean = __atomic_load_n(&p->mean, __ATOMIC_RELAXED);
}

// splitmuxsink file names: <dir>/capbox-<seq>-<UTC start>.<ext>, seq rising
// from what Go found in the folder (pipelines/recdir.NextSeq). The file is
// created here with O_EXCL, so that no run ever truncates a segment another
// wrote (a box without a real-time clock boots at the same time every time),
// and the folder is synced so that the new entry survives a power cut.
typedef struct { char *dir; char *ext; guint64 next; } capbox_rec_naming;

static void capbox_sync_dir(const char *dir) {
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return;
	fsync(fd);
	close(fd);
}

static gchar *capbox_format_location(GstElement *splitmux, guint fragment_id, GstSample *first, gpointer data) {
	capbox_rec_naming *n = data;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
	gchar *name = NULL;
	for (int tries = 0; tries < 1000; tries++) {
		guint64 seq = __atomic_fetch_add(&n->next, 1, __ATOMIC_RELAXED);
		g_free(name);
		name = g_strdup_printf("%s/capbox-%010" G_GUINT64_FORMAT "-%s.%s", n->dir, seq, stamp, n->ext);
		int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0) {
			close(fd);
			capbox_sync_dir(n->dir);
			return name;
		}
		if (errno != EEXIST) break; // the file sink reports the real error
	}
	return name;
}

static void capbox_rec_naming_free(gpointer data, GClosure *closure) {
	capbox_rec_naming *n = data;
	g_free(n->dir);
	g_free(n->ext);
	g_free(n);
}

void capbox_name_segments(GstElement *splitmux, const char *dir, const char *ext, guint64 first_seq) {
	capbox_rec_naming *n = g_new0(capbox_rec_naming, 1);
	n->dir = g_strdup(dir);
	n->ext = g_strdup(ext);
	n->next = first_seq;
	g_signal_connect_data(splitmux, "format-location-full", G_CALLBACK(capbox_format_location), n,
		capbox_rec_naming_free, 0);
}

// capbox_level reads a level message: the loudest channel's peak and RMS
// in dBFS. Returns FALSE for other messages.
gboolean capbox_level(GstMessage *m, double *peak, double *rms) {
	const GstStructure *s = gst_message_get_structure(m);
	if (s == NULL || !gst_structure_has_name(s, "level")) return FALSE;
	const GValue *pv = gst_structure_get_value(s, "peak");
	const GValue *rv = gst_structure_get_value(s, "rms");
	if (pv == NULL || rv == NULL) return FALSE;
	*peak = -INFINITY; *rms = -INFINITY;
G_GNUC_BEGIN_IGNORE_DEPRECATIONS
	GValueArray *pa = g_value_get_boxed(pv), *ra = g_value_get_boxed(rv);
	for (guint i = 0; pa && i < pa->n_values; i++) {
		double v = g_value_get_double(g_value_array_get_nth(pa, i));
		if (v > *peak) *peak = v;
	}
	for (guint i = 0; ra && i < ra->n_values; i++) {
		double v = g_value_get_double(g_value_array_get_nth(ra, i));
		if (v > *rms) *rms = v;
	}
G_GNUC_END_IGNORE_DEPRECATIONS
	return TRUE;
}

// SRT statistics, copied out of the boxed GstStructure and freed here: go-gst's
// GetProperty on a boxed structure hands Go freed memory (TOOLCHAIN.md).

// num reads a numeric field whatever its integer type (srtsink mixes
// gint, gint64 and guint64 across versions).
static gboolean num(const GstStructure *s, const char *field, double *out) {
	const GValue *v = gst_structure_get_value(s, field);
	if (v == NULL) return FALSE;
	if (G_VALUE_HOLDS_INT(v)) *out = g_value_get_int(v);
	else if (G_VALUE_HOLDS_UINT(v)) *out = g_value_get_uint(v);
	else if (G_VALUE_HOLDS_INT64(v)) *out = (double)g_value_get_int64(v);
	else if (G_VALUE_HOLDS_UINT64(v)) *out = (double)g_value_get_uint64(v);
	else if (G_VALUE_HOLDS_DOUBLE(v)) *out = g_value_get_double(v);
	else return FALSE;
	return TRUE;
}

static void capbox_srt_one(const GstStructure *s, capbox_srt_stats *out) {
	double d;
	if (num(s, "bytes-sent", &d)) out->bytes_sent += (gint64)d;
	if (num(s, "packets-sent", &d)) out->pkts_sent += (gint64)d;
	if (num(s, "packets-sent-lost", &d)) out->pkts_lost += (gint64)d;
	if (num(s, "rtt-ms", &d) && d > out->rtt_ms) out->rtt_ms = d;
	out->callers++;
}

gboolean capbox_srt_stats_get(GstElement *sink, capbox_srt_stats *out) {
	GstStructure *s = NULL;
	memset(out, 0, sizeof *out);
	g_object_get(sink, "stats", &s, NULL);
	if (s == NULL) return FALSE;
	const GValue *callers = gst_structure_get_value(s, "callers");
G_GNUC_BEGIN_IGNORE_DEPRECATIONS
	if (callers != NULL && G_VALUE_HOLDS(callers, g_value_array_get_type())) {
		GValueArray *a = g_value_get_boxed(callers);
		for (guint i = 0; a && i < a->n_values; i++) {
			const GValue *v = g_value_array_get_nth(a, i);
			if (G_VALUE_HOLDS(v, GST_TYPE_STRUCTURE)) capbox_srt_one(gst_value_get_structure(v), out);
		}
	} else {
		capbox_srt_one(s, out);
	}
G_GNUC_END_IGNORE_DEPRECATIONS
	gst_structure_free(s);
	return TRUE;
}

// capbox_link_pads links src's pad to sink's pad; a request template name
// (sink_%d, audio_%u) asks the muxer for a new pad.
gboolean capbox_link_pads(GstElement *src, const char *srcpad, GstElement *sink, const char *sinkpad) {
	return gst_element_link_pads(src, srcpad, sink, sinkpad);
}

GstClockTime capbox_buf_pts(GstBuffer *b) { return GST_BUFFER_PTS_IS_VALID(b) ? GST_BUFFER_PTS(b) : 0; }

// capbox_prop_string reads a property back in its serialized form (NULL
// for types that do not serialize); the caller frees it with g_free.
char *capbox_prop_string(GstElement *e, const char *name) {
	GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
	if (ps == NULL) return NULL;
	GValue v = G_VALUE_INIT;
	g_value_init(&v, ps->value_type);
	g_object_get_property(G_OBJECT(e), name, &v);
	char *s = NULL;
	if (G_VALUE_HOLDS_INT(&v) || G_VALUE_HOLDS_UINT(&v) || G_VALUE_HOLDS_INT64(&v) || G_VALUE_HOLDS_UINT64(&v) ||
	    G_VALUE_HOLDS_BOOLEAN(&v) || G_VALUE_HOLDS_DOUBLE(&v) || G_VALUE_HOLDS_FLOAT(&v)) {
		s = gst_value_serialize(&v);
	}
	g_value_unset(&v);
	return s;
}

// capbox_wake_bus posts a message that tells the bus reader to stop
// (readers block without a timeout, so an idle agent does not wake up).
void capbox_wake_bus(GstElement *pipeline) {
	GstBus *bus = gst_element_get_bus(pipeline);
	if (bus == NULL) return;
	gst_bus_post(bus, gst_message_new_application(NULL, gst_structure_new_empty("capbox-stop")));
	gst_object_unref(bus);
}

// capbox_eos_sources sends end of stream to each source of the pipeline
// rather than to the pipeline: gst_element_send_event on a bin holds the
// bin's state lock until every source took the event, and a source takes
// it only once its streaming thread lets go, so a busy or stuck streaming
// thread would also block the pipeline's teardown behind it.
void capbox_eos_sources(GstElement *pipeline) {
	GstIterator *it = gst_bin_iterate_sources(GST_BIN(pipeline));
	GValue v = G_VALUE_INIT;
	gboolean done = FALSE;
	while (!done) {
		switch (gst_iterator_next(it, &v)) {
		case GST_ITERATOR_OK:
			gst_element_send_event(GST_ELEMENT(g_value_get_object(&v)), gst_event_new_eos());
			g_value_reset(&v);
			break;
		case GST_ITERATOR_RESYNC:
			gst_iterator_resync(it);
			break;
		default:
			done = TRUE;
		}
	}
	g_value_unset(&v);
	gst_iterator_free(it);
}

// capbox_not_playing names the elements of a pipeline that are not playing
// ("x264enc0 PAUSED, ..."), for a state change that failed without an
// error on the bus; the caller frees it with g_free (NULL: none).
char *capbox_not_playing(GstElement *pipeline) {
	GString *out = g_string_new(NULL);
	GstIterator *it = gst_bin_iterate_recurse(GST_BIN(pipeline));
	GValue v = G_VALUE_INIT;
	gboolean done = FALSE;
	while (!done) {
		switch (gst_iterator_next(it, &v)) {
		case GST_ITERATOR_OK: {
			GstElement *e = g_value_get_object(&v);
			GstState cur = GST_STATE_VOID_PENDING, pending = GST_STATE_VOID_PENDING;
			gst_element_get_state(e, &cur, &pending, 0);
			if (cur != GST_STATE_PLAYING) {
				gchar *name = gst_element_get_name(e);
				g_string_append_printf(out, "%s%s %s", out->len ? ", " : "", name, gst_element_state_get_name(cur));
				g_free(name);
			}
			g_value_reset(&v);
			break;
		}
		case GST_ITERATOR_RESYNC:
			gst_iterator_resync(it);
			g_string_truncate(out, 0);
			break;
		default:
			done = TRUE;
		}
	}
	g_value_unset(&v);
	gst_iterator_free(it);
	if (out->len == 0) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}
