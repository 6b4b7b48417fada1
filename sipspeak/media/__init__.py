"""Sans-IO RTP/RTCP, G.711, DTMF, jitter buffer, AMD; asyncio RTP endpoints and WebRTC gateway."""
