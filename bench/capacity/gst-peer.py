#!/usr/bin/python3
# The capacity bench's peer: GStreamer's RTSP server (GstRtspServer) serving one
# MPEG-TS file at rtsp://127.0.0.1:PORT/capacity, one pipeline per client (shared
# factory off, like twinframe's per-session streams), one timestamped buffer per
# RTP packet so that each datagram is paced:
#   ( filesrc location=FILE ! tsparse set-timestamps=true alignment=7 ! rtpmp2tpay name=pay0 pt=33 )
#
#   /usr/bin/python3 bench/capacity/gst-peer.py PORT FILE [--nodelay]   (prints "ready" once it listens)
#   /usr/bin/python3 bench/capacity/gst-peer.py --check        (exit 0 when every part is installed)
#
# The server leaves Nagle's algorithm on for its RTSP connections (it sets no
# TCP_NODELAY): with the viewer's delayed ACKs, RTP interleaved on the
# connection then leaves in bunches ~40 ms apart. --nodelay sets TCP_NODELAY on
# every client's connection, as twinframe does on its own.
#
# Debian packages: python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
# gstreamer1.0-plugins-bad (tsparse) gstreamer1.0-plugins-good (rtpmp2tpay).
import signal
import socket
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
missing = [e for e in ('filesrc', 'tsparse', 'rtpmp2tpay') if Gst.ElementFactory.find(e) is None]
if missing:
    sys.stderr.write('gst-peer: missing GStreamer elements: %s\n' % ', '.join(missing))
    sys.exit(2)
if sys.argv[1:] == ['--check']:
    sys.exit(0)

port, location = sys.argv[1], sys.argv[2]
nodelay = '--nodelay' in sys.argv[3:]
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( filesrc location="%s" ! tsparse set-timestamps=true alignment=7 ! rtpmp2tpay name=pay0 pt=33 )' % location)
factory.set_shared(False)
server.get_mount_points().add_factory('/capacity', factory)


def set_nodelay(_server, client):
    client.get_connection().get_read_socket().set_option(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


if nodelay:
    server.connect('client-connected', set_nodelay)
if server.attach(None) == 0:
    sys.stderr.write('gst-peer: cannot listen on 127.0.0.1:%s\n' % port)
    sys.exit(1)

loop = GLib.MainLoop()
for sig in (signal.SIGTERM, signal.SIGINT):
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
print('ready', flush=True)
loop.run()
