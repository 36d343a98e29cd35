package main

import "golang.org/x/sys/unix"

func (s *fsStat) load(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	s.major, s.minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	return nil
}
