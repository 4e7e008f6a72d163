package testutil

import (
	"crypto/md5"
	"crypto/rand"
)

// apr1 is Apache's "$apr1$" MD5-crypt password hash (apr_md5.c), the
// format htpasswd -m writes and squid's basic_ncsa_auth reads. Test
// fixtures only: MD5-crypt is not a hash to protect real passwords with.
func apr1(password, salt string) string {
	const magic = "$apr1$"
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)
	alt := md5.Sum([]byte(password + salt + password))
	ctx := md5.New()
	ctx.Write(pw)
	ctx.Write([]byte(magic + salt))
	for i := len(pw); i > 0; i -= 16 {
		ctx.Write(alt[:min(16, i)])
	}
	for i := len(pw); i != 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(pw[:1])
		}
	}
	final := ctx.Sum(nil)
	for i := 0; i < 1000; i++ {
		c := md5.New()
		if i&1 != 0 {
			c.Write(pw)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write([]byte(salt))
		}
		if i%7 != 0 {
			c.Write(pw)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(pw)
		}
		final = c.Sum(nil)
	}
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := []byte(magic + salt + "$")
	to64 := func(v uint32, n int) {
		for ; n > 0; n-- {
			out = append(out, itoa64[v&0x3f])
			v >>= 6
		}
	}
	b := func(i int) uint32 { return uint32(final[i]) }
	to64(b(0)<<16|b(6)<<8|b(12), 4)
	to64(b(1)<<16|b(7)<<8|b(13), 4)
	to64(b(2)<<16|b(8)<<8|b(14), 4)
	to64(b(3)<<16|b(9)<<8|b(15), 4)
	to64(b(4)<<16|b(10)<<8|b(5), 4)
	to64(b(11), 2)
	return string(out)
}

// apr1Salt returns 8 random salt characters.
func apr1Salt() string {
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var r [8]byte
	_, _ = rand.Read(r[:])
	for i := range r {
		r[i] = itoa64[r[i]&0x3f]
	}
	return string(r[:])
}
