/*
 * The engine's RTP relay loop in C: sipspeak.media._rtpfast.
 *
 * The pure-Python twin is sipspeak/media/_rtppy.py; sipspeak/media/fastpath.py
 * picks one.  Both give the same three types with the same attributes, so the
 * Python code around them (endpoint, bridge, RTCP session) reads and writes one
 * set of state whichever implementation runs:
 *
 *   ReceiverCore  RFC 3550 A.1 sequence tracking and A.8 interarrival jitter of
 *                 one source (base of rtcpsession.ReceiverStatistics).
 *   RewriterCore  one bridge direction's stream identity: SSRC, sequence and
 *                 timestamp offsets (base of bridge.StreamRewriter).
 *   Port          an endpoint's RTP socket: latched source, destination,
 *                 counters.  Port.drain() is the socket's reader callback.
 *   TapBuffer     a tap that keeps packets for the recorder to take in bulk.
 *
 * Port.drain() reads every waiting datagram with recvmmsg(2).  A datagram takes
 * the relay path here when it is a plain-header (first octet 0x80) audio packet
 * of the source's payload type, from the latched address, on a port whose
 * rewriter targets another Port with a destination: receiver statistics,
 * SSRC / sequence / timestamp rewriting (RFC 3550 section 7: a translator),
 * optional G.711 law translation and the tap all happen without building a
 * Python object (the tap gets the payload as bytes), and the rewritten packets
 * leave with one sendmmsg(2) per batch.  Anything else -- not yet latched, RTCP
 * multiplexed on the RTP port (RFC 5761), telephone-events, header options,
 * other payload types -- is handed to the Python slow path (the endpoint's
 * datagram_received) in arrival order.
 *
 * Time: RewriterCore.last_time and the jitter's arrival times are
 * CLOCK_MONOTONIC seconds, i.e. Python's time.monotonic(); the relay path is
 * used only when the rewriter says its clock is that one (native_clock).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <stdint.h>
#include <time.h>

#define SEQ_MOD 65536
#define MAX_DROPOUT 3000
#define MAX_MISORDER 100
#define BATCH 32
#define MAX_ROUNDS 16
#define BUF_SIZE 2048

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ ReceiverCore */

typedef struct {
    PyObject_HEAD
    int clock_rate;
    int has_ssrc;
    unsigned int ssrc;
    long long base_seq;
    long long max_seq;
    long long cycles;
    long long bad_seq;
    long long probation;
    long long received;
    long long expected_prior;
    long long received_prior;
    int has_transit;
    double transit;
    double jitter;
} ReceiverCore;

static void
receiver_init_seq(ReceiverCore *self, long long seq)
{
    self->base_seq = seq;
    self->max_seq = seq;
    self->bad_seq = SEQ_MOD + 1;
    self->cycles = 0;
    self->received = 0;
    self->received_prior = 0;
    self->expected_prior = 0;
    self->has_transit = 0;
    self->transit = 0.0;
    self->jitter = 0.0;
}

/* A.1 update_seq + A.8 jitter; the same steps as _rtppy.ReceiverCore.update. */
static void
receiver_update(ReceiverCore *self, unsigned int ssrc, long long seq,
                unsigned int timestamp, double now)
{
    long long max_seq = self->max_seq;
    long long udelta = (seq - max_seq) & 0xFFFF;
    if (!self->has_ssrc || ssrc != self->ssrc) {
        self->has_ssrc = 1;
        self->ssrc = ssrc;
        receiver_init_seq(self, seq);
    }
    else if (udelta < MAX_DROPOUT) {
        if (seq < max_seq) {
            self->cycles += SEQ_MOD;
        }
        self->max_seq = seq;
    }
    else if (udelta <= SEQ_MOD - MAX_MISORDER) {
        if (seq == self->bad_seq) {
            receiver_init_seq(self, seq);
        }
        else {
            self->bad_seq = (seq + 1) & 0xFFFF;
            return;
        }
    }
    self->received += 1;
    double transit = now * self->clock_rate - (double)timestamp;
    if (self->has_transit) {
        double d = transit - self->transit;
        if (d < 0) {
            d = -d;
        }
        if (d < self->clock_rate * 10.0) {
            self->jitter += (d - self->jitter) * 0.0625;
        }
    }
    self->transit = transit;
    self->has_transit = 1;
}

static int
ReceiverCore_init(ReceiverCore *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"clock_rate", NULL};
    int clock_rate = 8000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$i", kwlist, &clock_rate)) {
        return -1;
    }
    if (clock_rate <= 0) {
        PyErr_Format(PyExc_ValueError, "clock rate must be positive, got %d",
                     clock_rate);
        return -1;
    }
    self->clock_rate = clock_rate;
    self->has_ssrc = 0;
    self->ssrc = 0;
    self->probation = 0;
    receiver_init_seq(self, 0);
    return 0;
}

static PyObject *
ReceiverCore_update(ReceiverCore *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "update(ssrc, seq, timestamp, now) takes 4 arguments");
        return NULL;
    }
    unsigned long ssrc = PyLong_AsUnsignedLong(args[0]);
    long seq = PyLong_AsLong(args[1]);
    unsigned long timestamp = PyLong_AsUnsignedLong(args[2]);
    double now = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (ssrc > 0xFFFFFFFFUL || timestamp > 0xFFFFFFFFUL || seq < 0 || seq > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "ssrc, seq or timestamp out of range");
        return NULL;
    }
    receiver_update(self, (unsigned int)ssrc, seq, (unsigned int)timestamp, now);
    Py_RETURN_NONE;
}

static PyObject *
ReceiverCore_get_ssrc(ReceiverCore *self, void *closure)
{
    if (!self->has_ssrc) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->ssrc);
}

static int
ReceiverCore_set_ssrc(ReceiverCore *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        self->has_ssrc = 0;
        return 0;
    }
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (PyErr_Occurred()) {
        return -1;
    }
    self->ssrc = (unsigned int)v;
    self->has_ssrc = 1;
    return 0;
}

static PyObject *
ReceiverCore_get_transit(ReceiverCore *self, void *closure)
{
    if (!self->has_transit) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(self->transit);
}

static int
ReceiverCore_set_transit(ReceiverCore *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        self->has_transit = 0;
        return 0;
    }
    double v = PyFloat_AsDouble(value);
    if (PyErr_Occurred()) {
        return -1;
    }
    self->transit = v;
    self->has_transit = 1;
    return 0;
}

static PyMemberDef ReceiverCore_members[] = {
    {"clock_rate", T_INT, offsetof(ReceiverCore, clock_rate), READONLY, NULL},
    {"base_seq", T_LONGLONG, offsetof(ReceiverCore, base_seq), 0, NULL},
    {"max_seq", T_LONGLONG, offsetof(ReceiverCore, max_seq), 0, NULL},
    {"cycles", T_LONGLONG, offsetof(ReceiverCore, cycles), 0, NULL},
    {"bad_seq", T_LONGLONG, offsetof(ReceiverCore, bad_seq), 0, NULL},
    {"probation", T_LONGLONG, offsetof(ReceiverCore, probation), 0, NULL},
    {"received", T_LONGLONG, offsetof(ReceiverCore, received), 0, NULL},
    {"expected_prior", T_LONGLONG, offsetof(ReceiverCore, expected_prior), 0, NULL},
    {"received_prior", T_LONGLONG, offsetof(ReceiverCore, received_prior), 0, NULL},
    {"jitter", T_DOUBLE, offsetof(ReceiverCore, jitter), 0, NULL},
    {NULL},
};

static PyGetSetDef ReceiverCore_getset[] = {
    {"ssrc", (getter)ReceiverCore_get_ssrc, (setter)ReceiverCore_set_ssrc, NULL, NULL},
    {"transit", (getter)ReceiverCore_get_transit, (setter)ReceiverCore_set_transit,
     NULL, NULL},
    {NULL},
};

static PyObject *
ReceiverCore_init_seq_py(ReceiverCore *self, PyObject *arg)
{
    long seq = PyLong_AsLong(arg);
    if (PyErr_Occurred()) {
        return NULL;
    }
    receiver_init_seq(self, seq);
    Py_RETURN_NONE;
}

static PyMethodDef ReceiverCore_methods[] = {
    {"update", (PyCFunction)(void (*)(void))ReceiverCore_update, METH_FASTCALL,
     "update(ssrc, seq, timestamp, now): account for one received packet."},
    {"_init_seq", (PyCFunction)ReceiverCore_init_seq_py, METH_O,
     "Start counting a source afresh at seq (A.1)."},
    {NULL},
};

static PyTypeObject ReceiverCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipspeak.media._rtpfast.ReceiverCore",
    .tp_basicsize = sizeof(ReceiverCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RFC 3550 A.1 / A.8 receiver state of one source.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ReceiverCore_init,
    .tp_members = ReceiverCore_members,
    .tp_getset = ReceiverCore_getset,
    .tp_methods = ReceiverCore_methods,
};

/* --------------------------------------------------------------- TapBuffer */

/* A tap that keeps what it is given as segments of contiguous audio:
 *   u32 first timestamp, u32 payload length, u8 codec (0 PCMU, 1 PCMA), 3 x 0,
 *   f64 arrival of the first packet (CLOCK_MONOTONIC seconds), payload
 * in native byte order, taken in bulk with take().  A packet that continues
 * the last segment (same codec, timestamp = segment start + its length, G.711
 * being one byte per sample) is appended to it, up to `segment` bytes; any
 * other starts a new segment.  The relay loop appends without calling
 * Python; called from Python it does the same. */

#define TAP_HEADER 20

typedef struct {
    PyObject_HEAD
    unsigned char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    Py_ssize_t limit;
    Py_ssize_t segment;
    Py_ssize_t last;          /* offset of the open segment's header, -1: none */
    long long dropped;
} TapBuffer;

static void
TapBuffer_dealloc(TapBuffer *self)
{
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
TapBuffer_init(TapBuffer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"limit", "segment", NULL};
    Py_ssize_t limit = 1 << 20;
    Py_ssize_t segment = 4000;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$nn", kwlist, &limit, &segment)) {
        return -1;
    }
    if (segment < 1 || limit < TAP_HEADER + 2048 || limit < TAP_HEADER + segment) {
        PyErr_Format(PyExc_ValueError, "limit %zd / segment %zd out of range", limit,
                     segment);
        return -1;
    }
    self->limit = limit;
    self->segment = segment;
    self->last = -1;
    return 0;
}

static int
tap_reserve(TapBuffer *self, Py_ssize_t need)
{
    if (need <= self->cap) {
        return 0;
    }
    Py_ssize_t cap = self->cap ? self->cap : 4096;
    while (cap < need) {
        cap *= 2;
    }
    unsigned char *grown = PyMem_Realloc(self->data, (size_t)cap);
    if (grown == NULL) {
        return -1;
    }
    self->data = grown;
    self->cap = cap;
    return 0;
}

static int
tap_append(TapBuffer *self, unsigned int timestamp, int codec,
           const unsigned char *payload, Py_ssize_t n, double arrival)
{
    if (self->last >= 0) {
        unsigned char *head = self->data + self->last;
        uint32_t start, length;
        memcpy(&start, head, 4);
        memcpy(&length, head + 4, 4);
        if (head[8] == codec && (uint32_t)(start + length) == (uint32_t)timestamp &&
            length + n <= self->segment && self->len + n <= self->limit) {
            if (tap_reserve(self, self->len + n) < 0) {
                self->dropped += 1;
                return 0;
            }
            head = self->data + self->last; /* the data may have moved */
            memcpy(self->data + self->len, payload, (size_t)n);
            self->len += n;
            length += (uint32_t)n;
            memcpy(head + 4, &length, 4);
            return 0;
        }
    }
    Py_ssize_t need = self->len + TAP_HEADER + n;
    if (need > self->limit || tap_reserve(self, need) < 0) {
        self->dropped += 1; /* nobody took the audio for too long */
        return 0;
    }
    unsigned char *at = self->data + self->len;
    uint32_t ts = timestamp;
    uint32_t length = (uint32_t)n;
    memcpy(at, &ts, 4);
    memcpy(at + 4, &length, 4);
    at[8] = (unsigned char)codec;
    at[9] = at[10] = at[11] = 0;
    memcpy(at + 12, &arrival, 8);
    memcpy(at + TAP_HEADER, payload, (size_t)n);
    self->last = self->len;
    self->len = need;
    return 0;
}

static int
codec_index(PyObject *codec)
{
    if (PyUnicode_Check(codec) && PyUnicode_CompareWithASCIIString(codec, "PCMA") == 0) {
        return 1;
    }
    return 0;
}

static PyObject *
TapBuffer_call(TapBuffer *self, PyObject *args, PyObject *kwds)
{
    PyObject *codec;
    unsigned long timestamp;
    Py_buffer payload;
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "tap(codec, timestamp, payload) takes no keywords");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "Uky*", &codec, &timestamp, &payload)) {
        return NULL;
    }
    tap_append(self, (unsigned int)(timestamp & 0xFFFFFFFFUL), codec_index(codec),
               payload.buf, payload.len, monotonic());
    PyBuffer_Release(&payload);
    Py_RETURN_NONE;
}

static PyObject *
TapBuffer_take(TapBuffer *self, PyObject *noargs)
{
    PyObject *out = PyBytes_FromStringAndSize((const char *)self->data, self->len);
    if (out != NULL) {
        self->len = 0;
        self->last = -1;
    }
    return out;
}

static PyMemberDef TapBuffer_members[] = {
    {"dropped", T_LONGLONG, offsetof(TapBuffer, dropped), 0, NULL},
    {"pending", T_PYSSIZET, offsetof(TapBuffer, len), READONLY, NULL},
    {NULL},
};

static PyMethodDef TapBuffer_methods[] = {
    {"take", (PyCFunction)TapBuffer_take, METH_NOARGS,
     "Everything kept so far as one bytes object of records; the buffer empties."},
    {NULL},
};

static PyTypeObject TapBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipspeak.media._rtpfast.TapBuffer",
    .tp_basicsize = sizeof(TapBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A bridge tap that keeps audio as contiguous segments, taken in bulk.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)TapBuffer_init,
    .tp_dealloc = (destructor)TapBuffer_dealloc,
    .tp_call = (ternaryfunc)TapBuffer_call,
    .tp_members = TapBuffer_members,
    .tp_methods = TapBuffer_methods,
};

/* ------------------------------------------------------------ RewriterCore */

typedef struct {
    PyObject_HEAD
    unsigned int out_ssrc;
    long long in_ssrc; /* -1: the next packet starts a new segment */
    int last_seq;
    unsigned int last_ts;
    int has_last_time;
    double last_time;
    int seq_offset;
    unsigned int ts_offset;
    unsigned int wire_ssrc;
    int src_pt;
    int dst_pt;
    long long switches;
    char native_clock;
    PyObject *table;       /* bytes of 256 or None: G.711 law translation */
    PyObject *tap;         /* tap(codec, timestamp, payload) or None */
    PyObject *out_codec;   /* the codec name handed to the tap */
    int out_codec_index;   /* the same as a TapBuffer codec number */
    PyObject *target_port; /* a Port, or None: no relay path */
} RewriterCore;

static PyTypeObject PortType;

static int
RewriterCore_traverse(RewriterCore *self, visitproc visit, void *arg)
{
    Py_VISIT(self->table);
    Py_VISIT(self->tap);
    Py_VISIT(self->out_codec);
    Py_VISIT(self->target_port);
    return 0;
}

static int
RewriterCore_clear(RewriterCore *self)
{
    Py_CLEAR(self->table);
    Py_CLEAR(self->tap);
    Py_CLEAR(self->out_codec);
    Py_CLEAR(self->target_port);
    return 0;
}

static void
RewriterCore_dealloc(RewriterCore *self)
{
    PyObject_GC_UnTrack(self);
    RewriterCore_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
RewriterCore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    RewriterCore *self = (RewriterCore *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->in_ssrc = -1;
    self->table = Py_NewRef(Py_None);
    self->tap = Py_NewRef(Py_None);
    self->out_codec = PyUnicode_FromString("PCMU");
    self->target_port = Py_NewRef(Py_None);
    if (self->out_codec == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
rewriter_resync(RewriterCore *self, int sequence_number, unsigned int timestamp,
                unsigned int ssrc, double now)
{
    int seq = (self->last_seq + 1) & 0xFFFF;
    long long step = 160;
    if (self->has_last_time) {
        /* nearbyint: round half to even, as Python's round() */
        double samples = nearbyint((now - self->last_time) * 8000.0);
        if (samples > 160.0) {
            step = samples > 4e9 ? 4000000000LL : (long long)samples;
        }
    }
    unsigned int ts = (unsigned int)(((unsigned long long)self->last_ts + step) & 0xFFFFFFFFULL);
    self->seq_offset = (seq - sequence_number) & 0xFFFF;
    self->ts_offset = ts - timestamp;
    self->in_ssrc = ssrc;
    self->switches += 1;
}

static PyObject *
RewriterCore_get_last_time(RewriterCore *self, void *closure)
{
    if (!self->has_last_time) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(self->last_time);
}

static int
RewriterCore_set_last_time(RewriterCore *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        self->has_last_time = 0;
        return 0;
    }
    double v = PyFloat_AsDouble(value);
    if (PyErr_Occurred()) {
        return -1;
    }
    self->last_time = v;
    self->has_last_time = 1;
    return 0;
}

#define OBJECT_SETTER(NAME, CHECK, MESSAGE)                                    \
    static PyObject *RewriterCore_get_##NAME(RewriterCore *self, void *c)       \
    {                                                                           \
        return Py_NewRef(self->NAME);                                           \
    }                                                                           \
    static int RewriterCore_set_##NAME(RewriterCore *self, PyObject *value,     \
                                       void *c)                                 \
    {                                                                           \
        if (value == NULL) {                                                    \
            value = Py_None;                                                    \
        }                                                                       \
        if (value != Py_None && !(CHECK)) {                                     \
            PyErr_SetString(PyExc_TypeError, MESSAGE);                          \
            return -1;                                                          \
        }                                                                       \
        Py_SETREF(self->NAME, Py_NewRef(value));                                \
        return 0;                                                               \
    }

OBJECT_SETTER(table, PyBytes_Check(value) && PyBytes_GET_SIZE(value) == 256,
              "table must be 256 bytes or None")
OBJECT_SETTER(tap, PyCallable_Check(value), "tap must be callable or None")
static PyObject *
RewriterCore_get_out_codec(RewriterCore *self, void *c)
{
    return Py_NewRef(self->out_codec);
}

static int
RewriterCore_set_out_codec(RewriterCore *self, PyObject *value, void *c)
{
    if (value == NULL || !PyUnicode_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "out_codec must be a str");
        return -1;
    }
    Py_SETREF(self->out_codec, Py_NewRef(value));
    self->out_codec_index = codec_index(value); /* not per tapped packet */
    return 0;
}
OBJECT_SETTER(target_port, PyObject_TypeCheck(value, &PortType),
              "target_port must be a Port or None")

static PyMemberDef RewriterCore_members[] = {
    {"out_ssrc", T_UINT, offsetof(RewriterCore, out_ssrc), 0, NULL},
    {"in_ssrc", T_LONGLONG, offsetof(RewriterCore, in_ssrc), 0, NULL},
    {"last_seq", T_INT, offsetof(RewriterCore, last_seq), 0, NULL},
    {"last_ts", T_UINT, offsetof(RewriterCore, last_ts), 0, NULL},
    {"seq_offset", T_INT, offsetof(RewriterCore, seq_offset), 0, NULL},
    {"ts_offset", T_UINT, offsetof(RewriterCore, ts_offset), 0, NULL},
    {"wire_ssrc", T_UINT, offsetof(RewriterCore, wire_ssrc), 0, NULL},
    {"src_pt", T_INT, offsetof(RewriterCore, src_pt), 0, NULL},
    {"dst_pt", T_INT, offsetof(RewriterCore, dst_pt), 0, NULL},
    {"switches", T_LONGLONG, offsetof(RewriterCore, switches), 0, NULL},
    {"native_clock", T_BOOL, offsetof(RewriterCore, native_clock), 0, NULL},
    {NULL},
};

static PyGetSetDef RewriterCore_getset[] = {
    {"last_time", (getter)RewriterCore_get_last_time,
     (setter)RewriterCore_set_last_time, NULL, NULL},
    {"table", (getter)RewriterCore_get_table, (setter)RewriterCore_set_table, NULL,
     NULL},
    {"tap", (getter)RewriterCore_get_tap, (setter)RewriterCore_set_tap, NULL, NULL},
    {"out_codec", (getter)RewriterCore_get_out_codec,
     (setter)RewriterCore_set_out_codec, NULL, NULL},
    {"target_port", (getter)RewriterCore_get_target_port,
     (setter)RewriterCore_set_target_port, NULL, NULL},
    {NULL},
};

static PyTypeObject RewriterCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipspeak.media._rtpfast.RewriterCore",
    .tp_basicsize = sizeof(RewriterCore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One bridge direction's stream identity (RFC 3550 section 7).",
    .tp_new = RewriterCore_new,
    .tp_dealloc = (destructor)RewriterCore_dealloc,
    .tp_traverse = (traverseproc)RewriterCore_traverse,
    .tp_clear = (inquiry)RewriterCore_clear,
    .tp_members = RewriterCore_members,
    .tp_getset = RewriterCore_getset,
};

/* -------------------------------------------------------------------- Port */

typedef struct {
    PyObject_HEAD
    int fd;
    int has_latched;
    struct sockaddr_storage latched;
    int has_dest;
    struct sockaddr_storage dest;
    socklen_t dest_len;
    int dtmf_pt; /* -1: none */
    long long rx_count;
    long long packets_sent;
    long long octets_sent;
    unsigned int last_sent_timestamp;
    long long dropped_foreign;
    long long dropped_malformed;
    long long send_errors;
    PyObject *sock;     /* keeps the socket object (and its fd) alive */
    PyObject *stats;    /* ReceiverCore */
    PyObject *slow;     /* slow(datagram, address) */
    PyObject *rewriter; /* RewriterCore or None */
} Port;

static int
Port_traverse(Port *self, visitproc visit, void *arg)
{
    Py_VISIT(self->sock);
    Py_VISIT(self->stats);
    Py_VISIT(self->slow);
    Py_VISIT(self->rewriter);
    return 0;
}

static int
Port_clear(Port *self)
{
    Py_CLEAR(self->sock);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->rewriter);
    return 0;
}

static void
Port_dealloc(Port *self)
{
    PyObject_GC_UnTrack(self);
    Port_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Port_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Port *self = (Port *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->fd = -1; /* nothing to read or send until __init__ */
        self->dtmf_pt = -1;
    }
    return (PyObject *)self;
}

static int
Port_init(Port *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sock", "stats", "slow", NULL};
    PyObject *sock, *stats, *slow;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O", kwlist, &sock,
                                     &ReceiverCoreType, &stats, &slow)) {
        return -1;
    }
    if (!PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "slow must be callable");
        return -1;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) {
        return -1;
    }
    self->fd = fd;
    self->has_latched = 0;
    self->has_dest = 0;
    self->dtmf_pt = -1;
    Py_XSETREF(self->sock, Py_NewRef(sock));
    Py_XSETREF(self->stats, Py_NewRef(stats));
    Py_XSETREF(self->slow, Py_NewRef(slow));
    Py_XSETREF(self->rewriter, Py_NewRef(Py_None));
    return 0;
}

/* (host, port[, flowinfo, scope_id]) with a numeric host -> sockaddr. */
static int
address_from_tuple(PyObject *addr, struct sockaddr_storage *out, socklen_t *len)
{
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
        PyErr_SetString(PyExc_TypeError, "address must be a (host, port) tuple");
        return -1;
    }
    const char *host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0));
    if (host == NULL) {
        return -1;
    }
    long port = PyLong_AsLong(PyTuple_GET_ITEM(addr, 1));
    if (port == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (port < 0 || port > 65535) {
        PyErr_Format(PyExc_ValueError, "port %ld out of range", port);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        *len = sizeof(*v4);
        return 0;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        *len = sizeof(*v6);
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "not a numeric IP address: %s", host);
    return -1;
}

static PyObject *
address_to_tuple(const struct sockaddr_storage *addr)
{
    char host[INET6_ADDRSTRLEN];
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, ntohs(v4->sin_port));
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, ntohs(v6->sin6_port),
                             (unsigned int)ntohl(v6->sin6_flowinfo),
                             (unsigned int)v6->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

static int
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return 0;
    }
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static PyObject *
Port_set_latched(Port *self, PyObject *addr)
{
    if (addr == Py_None) {
        self->has_latched = 0;
        Py_RETURN_NONE;
    }
    socklen_t len;
    if (address_from_tuple(addr, &self->latched, &len) < 0) {
        self->has_latched = 0;
        return NULL;
    }
    self->has_latched = 1;
    Py_RETURN_NONE;
}

static PyObject *
Port_set_dest(Port *self, PyObject *addr)
{
    if (addr == Py_None) {
        self->has_dest = 0;
        Py_RETURN_NONE;
    }
    if (address_from_tuple(addr, &self->dest, &self->dest_len) < 0) {
        self->has_dest = 0;
        return NULL;
    }
    self->has_dest = 1;
    Py_RETURN_NONE;
}

/* send(datagram) -> bool: one datagram to the destination; never raises for
 * network trouble (a real-time stream drops what it cannot send). */
static PyObject *
Port_send(Port *self, PyObject *data)
{
    Py_buffer view;
    if (!self->has_dest || self->fd < 0) {
        Py_RETURN_FALSE;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    ssize_t n = sendto(self->fd, view.buf, (size_t)view.len, MSG_DONTWAIT,
                       (struct sockaddr *)&self->dest, self->dest_len);
    PyBuffer_Release(&view);
    if (n < 0) {
        self->send_errors += 1;
        Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static unsigned char bufs[BATCH][BUF_SIZE];
static struct sockaddr_storage addrs[BATCH];
static struct iovec rx_iov[BATCH];
static struct mmsghdr rx_msgs[BATCH];
static struct iovec tx_iov[BATCH];
static struct mmsghdr tx_msgs[BATCH];
static int draining = 0;

static void
flush(Port *target, int count)
{
    int done = 0;
    while (done < count) {
        int n = sendmmsg(target->fd, tx_msgs + done, (unsigned int)(count - done),
                         MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* EAGAIN (full socket buffer), ECONNREFUSED from an earlier ICMP:
             * the first unsent datagram is lost, go on with the next. */
            target->send_errors += 1;
            done += 1;
            continue;
        }
        done += n;
    }
}

static int
call_slow(Port *self, int i, unsigned int len)
{
    PyObject *data = PyBytes_FromStringAndSize((const char *)bufs[i], len);
    if (data == NULL) {
        return -1;
    }
    PyObject *addr = address_to_tuple(&addrs[i]);
    if (addr == NULL) {
        Py_DECREF(data);
        return -1;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(self->slow, data, addr, NULL);
    Py_DECREF(data);
    Py_DECREF(addr);
    if (result == NULL) {
        PyErr_WriteUnraisable(self->slow);
        return 0;
    }
    Py_DECREF(result);
    return 0;
}

static PyObject *
Port_drain(Port *self, PyObject *noargs)
{
    if (draining) {
        Py_RETURN_NONE; /* the reader fires again while data is waiting */
    }
    draining = 1;
    Py_INCREF(self);
    for (int i = 0; i < BATCH; i++) {
        rx_iov[i].iov_base = bufs[i];
        rx_iov[i].iov_len = BUF_SIZE;
        memset(&rx_msgs[i].msg_hdr, 0, sizeof(rx_msgs[i].msg_hdr));
        rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
        rx_msgs[i].msg_hdr.msg_iovlen = 1;
        rx_msgs[i].msg_hdr.msg_name = &addrs[i];
        rx_msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
    }
    PyObject *failed = NULL;
    for (int round = 0; round < MAX_ROUNDS && self->fd >= 0; round++) {
        for (int i = 0; i < BATCH; i++) {
            rx_msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
            rx_msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(self->fd, rx_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            break; /* EAGAIN: drained; other errors (ICMP reports) end the round */
        }
        double now = monotonic();
        Port *pending_target = NULL;
        int pending = 0;
        for (int i = 0; i < n; i++) {
            unsigned int len = rx_msgs[i].msg_len;
            unsigned char *buf = bufs[i];
            if (rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                self->dropped_malformed += 1;
                continue;
            }
            if (self->has_latched && !same_address(&addrs[i], &self->latched)) {
                self->dropped_foreign += 1;
                continue;
            }
            int fast = self->has_latched && len >= 12 && buf[0] == 0x80;
            int second = buf[1];
            int pt = second & 0x7F;
            RewriterCore *rw = NULL;
            Port *target = NULL;
            if (fast) {
                fast = !(pt >= 64 && pt < 96) && pt != self->dtmf_pt &&
                       self->rewriter != Py_None;
            }
            if (fast) {
                rw = (RewriterCore *)self->rewriter;
                fast = rw->native_clock && pt == rw->src_pt &&
                       rw->target_port != Py_None;
            }
            if (fast) {
                target = (Port *)rw->target_port;
                fast = target->has_dest && target->fd >= 0;
            }
            if (!fast) {
                if (pending) {
                    flush(pending_target, pending);
                    Py_DECREF(pending_target);
                    pending = 0;
                    pending_target = NULL;
                }
                if (call_slow(self, i, len) < 0) {
                    failed = Py_None;
                    break;
                }
                if (self->fd < 0) {
                    break; /* the slow path closed the endpoint (a hang-up) */
                }
                continue;
            }
            int seq = (buf[2] << 8) | buf[3];
            unsigned int ts = ((unsigned int)buf[4] << 24) | ((unsigned int)buf[5] << 16) |
                              ((unsigned int)buf[6] << 8) | buf[7];
            unsigned int ssrc = ((unsigned int)buf[8] << 24) | ((unsigned int)buf[9] << 16) |
                                ((unsigned int)buf[10] << 8) | buf[11];
            self->rx_count += 1;
            receiver_update((ReceiverCore *)self->stats, ssrc, seq, ts, now);
            if ((long long)ssrc != rw->in_ssrc) {
                rewriter_resync(rw, seq, ts, ssrc, now);
                second |= 0x80; /* marker: a new talkspurt (RFC 3551 section 4.1) */
            }
            int out_seq = (seq + rw->seq_offset) & 0xFFFF;
            unsigned int out_ts = ts + rw->ts_offset;
            rw->last_seq = out_seq;
            rw->last_ts = out_ts;
            rw->last_time = now;
            rw->has_last_time = 1;
            if (rw->table != Py_None) {
                const unsigned char *table =
                    (const unsigned char *)PyBytes_AS_STRING(rw->table);
                for (unsigned int k = 12; k < len; k++) {
                    buf[k] = table[buf[k]];
                }
                second = (second & 0x80) | rw->dst_pt;
            }
            buf[1] = (unsigned char)second;
            buf[2] = (unsigned char)(out_seq >> 8);
            buf[3] = (unsigned char)out_seq;
            buf[4] = (unsigned char)(out_ts >> 24);
            buf[5] = (unsigned char)(out_ts >> 16);
            buf[6] = (unsigned char)(out_ts >> 8);
            buf[7] = (unsigned char)out_ts;
            unsigned int wire = rw->wire_ssrc;
            buf[8] = (unsigned char)(wire >> 24);
            buf[9] = (unsigned char)(wire >> 16);
            buf[10] = (unsigned char)(wire >> 8);
            buf[11] = (unsigned char)wire;
            if (Py_IS_TYPE(rw->tap, &TapBufferType)) {
                tap_append((TapBuffer *)rw->tap, out_ts, rw->out_codec_index,
                           buf + 12, (Py_ssize_t)len - 12, now);
            }
            else if (rw->tap != Py_None) {
                /* The tap may rewire or end the bridge: hold what it could free. */
                Py_INCREF(rw);
                PyObject *tap = Py_NewRef(rw->tap);
                PyObject *codec = Py_NewRef(rw->out_codec);
                PyObject *payload =
                    PyBytes_FromStringAndSize((const char *)buf + 12, len - 12);
                PyObject *stamp = PyLong_FromUnsignedLong(out_ts);
                PyObject *result = NULL;
                if (payload != NULL && stamp != NULL) {
                    result = PyObject_CallFunctionObjArgs(tap, codec, stamp, payload, NULL);
                }
                if (result == NULL) {
                    /* A failing tap (a recorder on a full disk) is reported once
                     * and detached; the audio goes on. */
                    PyErr_WriteUnraisable(tap);
                    if (rw->tap == tap) {
                        Py_SETREF(rw->tap, Py_NewRef(Py_None));
                    }
                }
                Py_XDECREF(result);
                Py_XDECREF(payload);
                Py_XDECREF(stamp);
                Py_DECREF(codec);
                Py_DECREF(tap);
                Py_DECREF(rw);
                if (self->rewriter == Py_None ||
                    ((RewriterCore *)self->rewriter)->target_port == Py_None) {
                    continue;
                }
                target = (Port *)((RewriterCore *)self->rewriter)->target_port;
                if (!target->has_dest || target->fd < 0) {
                    continue;
                }
            }
            target->packets_sent += 1;
            target->octets_sent += len - 12;
            target->last_sent_timestamp = out_ts;
            if (pending && pending_target != target) {
                flush(pending_target, pending);
                Py_DECREF(pending_target);
                pending = 0;
                pending_target = NULL;
            }
            if (pending_target == NULL) {
                pending_target = (Port *)Py_NewRef(target);
            }
            tx_iov[pending].iov_base = buf;
            tx_iov[pending].iov_len = len;
            memset(&tx_msgs[pending].msg_hdr, 0, sizeof(tx_msgs[pending].msg_hdr));
            tx_msgs[pending].msg_hdr.msg_iov = &tx_iov[pending];
            tx_msgs[pending].msg_hdr.msg_iovlen = 1;
            tx_msgs[pending].msg_hdr.msg_name = &target->dest;
            tx_msgs[pending].msg_hdr.msg_namelen = target->dest_len;
            pending += 1;
        }
        if (pending) {
            flush(pending_target, pending);
            Py_DECREF(pending_target);
        }
        if (failed != NULL || n < BATCH) {
            break;
        }
    }
    draining = 0;
    Py_DECREF(self);
    if (failed != NULL) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Port_detach(Port *self, PyObject *noargs)
{
    /* The socket is about to close: no more reads or sends through this fd. */
    self->fd = -1;
    self->has_dest = 0;
    self->has_latched = 0;
    Py_SETREF(self->rewriter, Py_NewRef(Py_None));
    Py_RETURN_NONE;
}

static PyObject *
Port_get_rewriter(Port *self, void *closure)
{
    return Py_NewRef(self->rewriter);
}

static int
Port_set_rewriter(Port *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        value = Py_None;
    }
    if (value != Py_None && !PyObject_TypeCheck(value, &RewriterCoreType)) {
        PyErr_SetString(PyExc_TypeError, "rewriter must be a RewriterCore or None");
        return -1;
    }
    Py_SETREF(self->rewriter, Py_NewRef(value));
    return 0;
}

static PyObject *
Port_get_stats(Port *self, void *closure)
{
    return Py_NewRef(self->stats);
}

static PyObject *
Port_get_dtmf_pt(Port *self, void *closure)
{
    if (self->dtmf_pt < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLong(self->dtmf_pt);
}

static int
Port_set_dtmf_pt(Port *self, PyObject *value, void *closure)
{
    if (value == NULL || value == Py_None) {
        self->dtmf_pt = -1;
        return 0;
    }
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v < 0 || v > 127) {
        PyErr_Format(PyExc_ValueError, "payload type %ld is not 0-127", v);
        return -1;
    }
    self->dtmf_pt = (int)v;
    return 0;
}

static PyMemberDef Port_members[] = {
    {"rx_count", T_LONGLONG, offsetof(Port, rx_count), 0, NULL},
    {"packets_sent", T_LONGLONG, offsetof(Port, packets_sent), 0, NULL},
    {"octets_sent", T_LONGLONG, offsetof(Port, octets_sent), 0, NULL},
    {"last_sent_timestamp", T_UINT, offsetof(Port, last_sent_timestamp), 0, NULL},
    {"dropped_foreign", T_LONGLONG, offsetof(Port, dropped_foreign), 0, NULL},
    {"dropped_malformed", T_LONGLONG, offsetof(Port, dropped_malformed), 0, NULL},
    {"send_errors", T_LONGLONG, offsetof(Port, send_errors), 0, NULL},
    {NULL},
};

static PyGetSetDef Port_getset[] = {
    {"rewriter", (getter)Port_get_rewriter, (setter)Port_set_rewriter, NULL, NULL},
    {"stats", (getter)Port_get_stats, NULL, NULL, NULL},
    {"dtmf_pt", (getter)Port_get_dtmf_pt, (setter)Port_set_dtmf_pt, NULL, NULL},
    {NULL},
};

static PyMethodDef Port_methods[] = {
    {"drain", (PyCFunction)Port_drain, METH_NOARGS,
     "Read every waiting datagram: relay what can be, hand the rest to slow()."},
    {"send", (PyCFunction)Port_send, METH_O,
     "Send one datagram to the destination; False if it could not go."},
    {"set_latched", (PyCFunction)Port_set_latched, METH_O,
     "The source address packets are accepted from, or None."},
    {"set_dest", (PyCFunction)Port_set_dest, METH_O,
     "Where send() and the relay path send to, or None."},
    {"detach", (PyCFunction)Port_detach, METH_NOARGS,
     "Stop using the socket (before it is closed)."},
    {NULL},
};

static PyTypeObject PortType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sipspeak.media._rtpfast.Port",
    .tp_basicsize = sizeof(Port),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An endpoint's RTP socket with the relay path.",
    .tp_new = Port_new,
    .tp_init = (initproc)Port_init,
    .tp_dealloc = (destructor)Port_dealloc,
    .tp_traverse = (traverseproc)Port_traverse,
    .tp_clear = (inquiry)Port_clear,
    .tp_members = Port_members,
    .tp_getset = Port_getset,
    .tp_methods = Port_methods,
};

/* ------------------------------------------------------------------ module */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sipspeak.media._rtpfast",
    .m_doc = "The RTP relay loop in C (see sipspeak/media/fastpath.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__rtpfast(void)
{
    if (PyType_Ready(&ReceiverCoreType) < 0 || PyType_Ready(&RewriterCoreType) < 0 ||
        PyType_Ready(&PortType) < 0 || PyType_Ready(&TapBufferType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "ReceiverCore", (PyObject *)&ReceiverCoreType) < 0 ||
        PyModule_AddObjectRef(m, "RewriterCore", (PyObject *)&RewriterCoreType) < 0 ||
        PyModule_AddObjectRef(m, "Port", (PyObject *)&PortType) < 0 ||
        PyModule_AddObjectRef(m, "TapBuffer", (PyObject *)&TapBufferType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
