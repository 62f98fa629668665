package lab

import (
	"encoding/binary"
	"net/netip"
)

// What the link needs to know of a packet: its TCP flow, its flags, and
// how to answer it with a reset. IPv4 and IPv6 without extension headers,
// which is all the lab's own hosts send.

const (
	protoTCP = 6
	tcpFIN   = 0x01
	tcpSYN   = 0x02
	tcpRST   = 0x04
	tcpACK   = 0x10
)

// segment is the TCP view of an IP packet.
type segment struct {
	src, dst netip.AddrPort
	flags    byte
	seq, ack uint32
	payload  int // bytes of data
}

// parseTCP reads p's IP and TCP headers; ok is false for anything else.
func parseTCP(p []byte) (s segment, ok bool) {
	if len(p) < 1 {
		return s, false
	}
	var tcp []byte
	var src, dst netip.Addr
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 || p[9] != protoTCP {
			return s, false
		}
		ihl := int(p[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(p[2:4]))
		if ihl < 20 || total > len(p) || total < ihl+20 {
			return s, false
		}
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		tcp = p[ihl:total]
	case 6:
		if len(p) < 40 || p[6] != protoTCP {
			return s, false
		}
		total := 40 + int(binary.BigEndian.Uint16(p[4:6]))
		if total > len(p) || total < 60 {
			return s, false
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		tcp = p[40:total]
	default:
		return s, false
	}
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return s, false
	}
	return segment{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:2])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:4])),
		flags:   tcp[13],
		seq:     binary.BigEndian.Uint32(tcp[4:8]),
		ack:     binary.BigEndian.Uint32(tcp[8:12]),
		payload: len(tcp) - off,
	}, true
}

// flowKey names a TCP flow the same way from both ends.
type flowKey struct{ a, b netip.AddrPort }

func (s segment) flow() flowKey {
	if s.src.Compare(s.dst) < 0 {
		return flowKey{s.src, s.dst}
	}
	return flowKey{s.dst, s.src}
}

// reset builds the RST a middlebox that has forgotten s's flow sends back
// to s's sender (RFC 9293 3.10.7.1: seq from the segment's ACK, if any;
// else seq 0 with an ACK of what the segment occupied).
func (s segment) reset() []byte {
	var flags byte = tcpRST
	var seq, ack uint32
	if s.flags&tcpACK != 0 {
		seq = s.ack
	} else {
		flags |= tcpACK
		ack = s.seq + uint32(s.payload)
		if s.flags&tcpSYN != 0 {
			ack++
		}
		if s.flags&tcpFIN != 0 {
			ack++
		}
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:2], s.dst.Port())
	binary.BigEndian.PutUint16(tcp[2:4], s.src.Port())
	binary.BigEndian.PutUint32(tcp[4:8], seq)
	binary.BigEndian.PutUint32(tcp[8:12], ack)
	tcp[12] = 5 << 4
	tcp[13] = flags
	from, to := s.dst.Addr(), s.src.Addr()
	var p []byte
	if from.Is4() {
		p = make([]byte, 20, 40)
		p[0], p[8], p[9] = 0x45, 64, protoTCP
		binary.BigEndian.PutUint16(p[2:4], 40)
		f, t := from.As4(), to.As4()
		copy(p[12:16], f[:])
		copy(p[16:20], t[:])
		binary.BigEndian.PutUint16(p[10:12], checksum(0, p))
	} else {
		p = make([]byte, 40, 60)
		p[0], p[6], p[7] = 0x60, protoTCP, 64
		binary.BigEndian.PutUint16(p[4:6], 20)
		f, t := from.As16(), to.As16()
		copy(p[8:24], f[:])
		copy(p[24:40], t[:])
	}
	binary.BigEndian.PutUint16(tcp[16:18], checksum(pseudoHeader(from, to, len(tcp)), tcp))
	return append(p, tcp...)
}

// pseudoHeader is the partial sum of TCP's pseudo-header.
func pseudoHeader(src, dst netip.Addr, length int) uint32 {
	var sum uint32
	for _, b := range [][]byte{src.AsSlice(), dst.AsSlice()} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	return sum + protoTCP + uint32(length)
}

// checksum is the Internet checksum (RFC 1071) of b, from a partial sum.
func checksum(sum uint32, b []byte) uint16 {
	for ; len(b) >= 2; b = b[2:] {
		sum += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
