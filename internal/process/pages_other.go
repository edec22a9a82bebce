//go:build !linux

package process

import "errors"

// ReleaseStartupPages is Linux-only (madvise MADV_PAGEOUT).
func ReleaseStartupPages() (PageRelease, error) {
	return PageRelease{}, errors.ErrUnsupported
}
