// hub.c: the tee between the fronts (live, slate, audio encoders) and the
// outputs. Every encoded buffer is forwarded here, on the front's
// streaming thread, without entering Go: a C thread that calls into Go
// leaves the runtime a processor to take back, which keeps the Go
// scheduler's monitor on its shortest sleep (measured: ~1-2 % of a core at
// 77 buffers a second). Go is called only when a front takes over a track
// (a few times per signal change) and at end of stream.

#include "capbox.h"

extern void capboxSwitched(guintptr hub, gint track, guintptr old_front, guintptr new_front);
extern void capboxEOS(guintptr front);

// A pending video front that is not yet on air asks its encoder for
// another keyframe at most this often (µs).
#define KEY_ASK_EVERY_US (100 * G_TIME_SPAN_MILLISECOND)

struct capbox_front {
	gint refs;
	capbox_hub *hub; // a reference
	GWeakRef sink;   // the appsink; gone with its pipeline
	gint track;
	guintptr id;
	// Under the hub's lock:
	gint64 base;      // clock base (ns) read at the first sample, -1 before
	gint64 key_asked; // monotonic µs of the last keyframe request
};

struct capbox_out {
	GstElement *vsrc, *asrc; // references
	gint64 base;             // the output pipeline's clock base (ns)
	guint64 limit;           // bytes queued in an appsrc before it is congested
	// Under the hub's lock:
	gboolean started, wait_key, discont;
	gint64 start_abs;
	guint64 dropped;
	GstCaps *vcaps, *acaps;
};

typedef struct {
	capbox_front *active, *pending; // references
	GstCaps *caps;
	// last_abs is the clock time of the last forwarded buffer; a new front
	// starts after it so timestamps never go back.
	gint64 last_abs;
	// holding: the pending front's keyframe came older than last_abs (it
	// runs with more latency than the active one: a capture and its
	// encoder against the slate). The active front is held back so time
	// passes last_abs, and the pending front takes over at its next
	// keyframe; otherwise it never would.
	gboolean holding;
	guint64 frames, bytes;
	gint64 last_wall; // µs since the epoch
} capbox_track;

struct capbox_hub {
	gint refs;
	GMutex mu;
	guintptr id;
	capbox_track tracks[2];
	GPtrArray *outs;
	// The newest video keyframe (with SPS/PPS), for snapshots.
	GstBuffer *last_key;
	GstCaps *last_key_caps;
	// want_key: an output waits for a keyframe newer than its start.
	gboolean want_key;
};

static void out_free(capbox_out *o) {
	gst_object_unref(o->vsrc);
	gst_object_unref(o->asrc);
	if (o->vcaps) gst_caps_unref(o->vcaps);
	if (o->acaps) gst_caps_unref(o->acaps);
	g_free(o);
}

capbox_hub *capbox_hub_new(guintptr id) {
	capbox_hub *h = g_new0(capbox_hub, 1);
	h->refs = 1;
	h->id = id;
	g_mutex_init(&h->mu);
	h->outs = g_ptr_array_new();
	return h;
}

static void hub_unref(capbox_hub *h) {
	if (!g_atomic_int_dec_and_test(&h->refs)) return;
	g_ptr_array_free(h->outs, TRUE);
	g_mutex_clear(&h->mu);
	g_free(h);
}

static capbox_front *front_ref(capbox_front *f) {
	if (f) g_atomic_int_inc(&f->refs);
	return f;
}

static void front_unref(gpointer data) {
	capbox_front *f = data;
	if (f == NULL || !g_atomic_int_dec_and_test(&f->refs)) return;
	g_weak_ref_clear(&f->sink);
	hub_unref(f->hub);
	g_free(f);
}

static gboolean request_keyframe(capbox_front *f) {
	GstElement *sink = g_weak_ref_get(&f->sink);
	if (sink == NULL) return FALSE;
	gboolean ok = capbox_request_keyframe(sink);
	gst_object_unref(sink);
	return ok;
}

// running converts a buffer time to running time in its segment
// (encoders shift their segment so DTS stays positive).
static GstClockTime running(const GstSegment *seg, GstClockTime t) {
	if (!GST_CLOCK_TIME_IS_VALID(t) || seg == NULL || seg->format != GST_FORMAT_TIME) return t;
	guint64 rt;
	if (gst_segment_to_running_time_full(seg, GST_FORMAT_TIME, t, &rt) != 1) return GST_CLOCK_TIME_NONE;
	return rt;
}

// pull takes a sample and returns its buffer, with timestamps turned into
// running time (a metadata copy; memory is shared) and its caps.
static GstBuffer *pull(GstAppSink *sink, GstCaps **caps) {
	GstSample *s = gst_app_sink_pull_sample(sink);
	*caps = NULL;
	if (s == NULL) return NULL;
	GstBuffer *b = gst_sample_get_buffer(s);
	GstCaps *c = gst_sample_get_caps(s);
	const GstSegment *seg = gst_sample_get_segment(s);
	if (b != NULL) {
		b = gst_buffer_copy(b);
		GST_BUFFER_PTS(b) = running(seg, GST_BUFFER_PTS(b));
		GST_BUFFER_DTS(b) = running(seg, GST_BUFFER_DTS(b));
	}
	if (c != NULL) *caps = gst_caps_ref(c);
	gst_sample_unref(s);
	return b;
}

// set_out_caps sets an output's appsrc caps before its next buffer (a new
// SPS, a new size after a resolution change).
static void set_out_caps(capbox_out *o, gint track, GstCaps *caps) {
	GstCaps **held = track == CAPBOX_VIDEO ? &o->vcaps : &o->acaps;
	if (*held) gst_caps_unref(*held);
	*held = caps ? gst_caps_ref(caps) : NULL;
	gst_app_src_set_caps(GST_APP_SRC(track == CAPBOX_VIDEO ? o->vsrc : o->asrc), caps);
}

static void push_video(capbox_hub *h, capbox_out *o, capbox_front *f, GstBuffer *b, gint64 abs, gboolean delta) {
	if (o->vcaps == NULL && h->tracks[CAPBOX_VIDEO].caps != NULL) {
		set_out_caps(o, CAPBOX_VIDEO, h->tracks[CAPBOX_VIDEO].caps);
	}
	if (gst_app_src_get_current_level_bytes(GST_APP_SRC(o->vsrc)) > o->limit) {
		// Congested (a slow network): drop until the next keyframe so the
		// receiver never sees a broken picture, and never block the others.
		o->wait_key = TRUE;
		o->dropped++;
		return;
	}
	if (o->wait_key) {
		if (delta) {
			o->dropped++;
			return;
		}
		if (abs < o->base) {
			// Captured before this output's pipeline started: its running
			// time would be negative. Wait for the next keyframe (asked for).
			h->want_key = TRUE;
			return;
		}
		o->wait_key = FALSE;
		if (!o->started) {
			o->started = TRUE;
			o->start_abs = abs;
		}
	}
	capbox_forward(o->vsrc, b, f->base - o->base, o->discont);
	o->discont = FALSE;
}

static void push_audio(capbox_hub *h, capbox_out *o, capbox_front *f, GstBuffer *b, gint64 abs) {
	if (!o->started || abs < o->start_abs) return;
	if (o->acaps == NULL && h->tracks[CAPBOX_AUDIO].caps != NULL) {
		set_out_caps(o, CAPBOX_AUDIO, h->tracks[CAPBOX_AUDIO].caps);
	}
	if (gst_app_src_get_current_level_bytes(GST_APP_SRC(o->asrc)) > o->limit) {
		o->dropped++;
		return;
	}
	capbox_forward(o->asrc, b, f->base - o->base, FALSE);
}

// on_sample is every front's appsink callback: it forwards the active
// front's buffers to every output and moves a pending front on air at its
// first usable buffer (a keyframe for video), so a switch (live <-> slate)
// leaves no gap.
static GstFlowReturn on_sample(GstAppSink *appsink, gpointer data) {
	capbox_front *f = data;
	capbox_hub *h = f->hub;
	GstCaps *caps;
	GstBuffer *b = pull(appsink, &caps);
	if (b == NULL) {
		if (caps) gst_caps_unref(caps);
		return GST_FLOW_OK;
	}
	gboolean delta = GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
	gboolean key = f->track == CAPBOX_AUDIO || !delta;
	gint64 now = g_get_monotonic_time();
	capbox_front *old = NULL;
	gboolean switched = FALSE, ask = FALSE;

	g_mutex_lock(&h->mu);
	capbox_track *t = &h->tracks[f->track];
	if (f->base < 0) f->base = (gint64)gst_element_get_base_time(GST_ELEMENT(appsink));
	gboolean timed = GST_BUFFER_PTS_IS_VALID(b);
	gint64 abs = timed ? (gint64)GST_BUFFER_PTS(b) + f->base : t->last_abs;
	if (f == t->pending && key && timed && (t->active == NULL || abs > t->last_abs)) {
		old = t->active; // its reference moves to old
		t->active = t->pending;
		t->pending = NULL;
		t->holding = FALSE;
		switched = TRUE;
		for (guint i = 0; i < h->outs->len; i++) ((capbox_out *)g_ptr_array_index(h->outs, i))->discont = TRUE;
	} else if (f == t->pending && key) {
		t->holding = TRUE;
	}
	if (f != t->active || t->holding) {
		// A pending video front whose first keyframe came too late (the
		// live front had newer frames) asks for another one at once rather
		// than waiting a whole keyframe interval.
		ask = f == t->pending && f->track == CAPBOX_VIDEO && now - f->key_asked > KEY_ASK_EVERY_US;
		if (ask) f->key_asked = now;
		g_mutex_unlock(&h->mu);
		if (ask) capbox_request_keyframe(GST_ELEMENT(appsink));
		gst_buffer_unref(b);
		if (caps) gst_caps_unref(caps);
		return GST_FLOW_OK;
	}
	if (!capbox_caps_equal(caps, t->caps)) {
		if (t->caps) gst_caps_unref(t->caps);
		t->caps = caps ? gst_caps_ref(caps) : NULL;
		for (guint i = 0; i < h->outs->len; i++) set_out_caps(g_ptr_array_index(h->outs, i), f->track, caps);
	}
	t->last_abs = abs;
	t->frames++;
	t->bytes += gst_buffer_get_size(b);
	t->last_wall = g_get_real_time();
	if (f->track == CAPBOX_VIDEO && !delta) {
		if (h->last_key) gst_buffer_unref(h->last_key);
		if (h->last_key_caps) gst_caps_unref(h->last_key_caps);
		h->last_key = gst_buffer_ref(b);
		h->last_key_caps = caps ? gst_caps_ref(caps) : NULL;
	}
	for (guint i = 0; i < h->outs->len; i++) {
		capbox_out *o = g_ptr_array_index(h->outs, i);
		if (f->track == CAPBOX_VIDEO) push_video(h, o, f, b, abs, delta);
		else push_audio(h, o, f, b, abs);
	}
	ask = h->want_key && now - f->key_asked > KEY_ASK_EVERY_US;
	if (ask) {
		h->want_key = FALSE;
		f->key_asked = now;
	}
	g_mutex_unlock(&h->mu);
	if (ask) capbox_request_keyframe(GST_ELEMENT(appsink));
	if (switched) capboxSwitched(h->id, f->track, old ? old->id : 0, f->id);
	front_unref(old);
	gst_buffer_unref(b);
	if (caps) gst_caps_unref(caps);
	return GST_FLOW_OK;
}

static void on_eos(GstAppSink *sink, gpointer data) {
	capbox_front *f = data;
	capboxEOS(f->id);
}

// capbox_front_new feeds an appsink's samples to the hub. The callbacks
// hold a reference, dropped when the appsink goes; the caller holds the
// other and gives it back with capbox_front_release.
capbox_front *capbox_front_new(capbox_hub *h, GstElement *sink, gint track, guintptr id) {
	capbox_front *f = g_new0(capbox_front, 1);
	f->refs = 2;
	g_atomic_int_inc(&h->refs);
	f->hub = h;
	g_weak_ref_init(&f->sink, sink);
	f->track = track;
	f->id = id;
	f->base = -1;
	GstAppSinkCallbacks cb = {0};
	cb.new_sample = on_sample;
	cb.eos = on_eos;
	gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, f, front_unref);
	return f;
}

// capbox_hub_detach forgets a front (stopped or failed).
void capbox_hub_detach(capbox_hub *h, capbox_front *f) {
	capbox_track *t = &h->tracks[f->track];
	capbox_front *gone[2] = {NULL, NULL};
	g_mutex_lock(&h->mu);
	if (t->active == f) {
		gone[0] = f;
		t->active = NULL;
	}
	if (t->pending == f) {
		gone[1] = f;
		t->pending = NULL;
		t->holding = FALSE;
	}
	g_mutex_unlock(&h->mu);
	front_unref(gone[0]);
	front_unref(gone[1]);
}

// capbox_front_release detaches the front and gives back the caller's
// reference; call it once, after the front's pipeline stopped.
void capbox_front_release(capbox_front *f) {
	capbox_hub_detach(f->hub, f);
	front_unref(f);
}

// capbox_hub_set_pending makes f take over its track at its first usable
// sample (a keyframe for video) after the last forwarded one.
void capbox_hub_set_pending(capbox_hub *h, capbox_front *f) {
	capbox_track *t = &h->tracks[f->track];
	capbox_front *gone = NULL;
	g_mutex_lock(&h->mu);
	t->holding = FALSE;
	gone = t->pending;
	t->pending = t->active == f ? NULL : front_ref(f);
	g_mutex_unlock(&h->mu);
	front_unref(gone);
}

// capbox_hub_active returns the id of the front feeding a track (0: none).
guintptr capbox_hub_active(capbox_hub *h, gint track) {
	g_mutex_lock(&h->mu);
	capbox_front *f = h->tracks[track].active;
	guintptr id = f ? f->id : 0;
	g_mutex_unlock(&h->mu);
	return id;
}

// capbox_hub_add_out starts feeding an output from its next keyframe,
// which is requested from the video encoder.
capbox_out *capbox_hub_add_out(capbox_hub *h, GstElement *vsrc, GstElement *asrc, gint64 base, guint64 limit) {
	capbox_out *o = g_new0(capbox_out, 1);
	o->vsrc = gst_object_ref(vsrc);
	o->asrc = gst_object_ref(asrc);
	o->base = base;
	o->limit = limit;
	o->wait_key = TRUE;
	g_mutex_lock(&h->mu);
	g_ptr_array_add(h->outs, o);
	capbox_front *v = front_ref(h->tracks[CAPBOX_VIDEO].active);
	g_mutex_unlock(&h->mu);
	if (v) request_keyframe(v);
	front_unref(v);
	return o;
}

// capbox_hub_remove_out stops feeding an output and frees o.
void capbox_hub_remove_out(capbox_hub *h, capbox_out *o) {
	g_mutex_lock(&h->mu);
	gboolean had = g_ptr_array_remove_fast(h->outs, o);
	g_mutex_unlock(&h->mu);
	if (had) out_free(o);
}

guint64 capbox_hub_dropped(capbox_hub *h, capbox_out *o) {
	g_mutex_lock(&h->mu);
	guint64 n = o->dropped;
	g_mutex_unlock(&h->mu);
	return n;
}

void capbox_hub_track_stats(capbox_hub *h, gint track, capbox_track_stats *out) {
	g_mutex_lock(&h->mu);
	capbox_track *t = &h->tracks[track];
	out->frames = t->frames;
	out->bytes = t->bytes;
	out->last_wall_us = t->last_wall;
	out->active = t->active ? t->active->id : 0;
	g_mutex_unlock(&h->mu);
}

// capbox_hub_keyframe returns references to the newest keyframe and its
// caps (NULL: none yet); the caller unrefs both.
GstBuffer *capbox_hub_keyframe(capbox_hub *h, GstCaps **caps) {
	g_mutex_lock(&h->mu);
	GstBuffer *b = h->last_key ? gst_buffer_ref(h->last_key) : NULL;
	*caps = h->last_key_caps ? gst_caps_ref(h->last_key_caps) : NULL;
	g_mutex_unlock(&h->mu);
	return b;
}

// capbox_hub_close drops everything the hub holds and the caller's
// reference; fronts whose pipelines are still going keep it alive, fed
// to nowhere.
void capbox_hub_close(capbox_hub *h) {
	capbox_front *gone[4];
	g_mutex_lock(&h->mu);
	for (int i = 0; i < 2; i++) {
		capbox_track *t = &h->tracks[i];
		gone[2 * i] = t->active;
		gone[2 * i + 1] = t->pending;
		t->active = t->pending = NULL;
		if (t->caps) gst_caps_unref(t->caps);
		t->caps = NULL;
	}
	while (h->outs->len > 0) out_free(g_ptr_array_steal_index_fast(h->outs, h->outs->len - 1));
	if (h->last_key) gst_buffer_unref(h->last_key);
	if (h->last_key_caps) gst_caps_unref(h->last_key_caps);
	h->last_key = NULL;
	h->last_key_caps = NULL;
	g_mutex_unlock(&h->mu);
	for (int i = 0; i < 4; i++) front_unref(gone[i]);
	hub_unref(h);
}
