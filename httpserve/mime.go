package httpserve

import (
	"mime"
	"path"
	"strings"
)

// mediaTypes are the types players need that the system's MIME table often lacks.
var mediaTypes = map[string]string{
	".mkv":  "video/x-matroska",
	".mka":  "audio/x-matroska",
	".mp4":  "video/mp4",
	".m4v":  "video/x-m4v",
	".m4a":  "audio/mp4",
	".webm": "video/webm",
	".avi":  "video/x-msvideo",
	".ts":   "video/mp2t",
	".m2ts": "video/mp2t",
	".mov":  "video/quicktime",
	".mpg":  "video/mpeg",
	".mpeg": "video/mpeg",
	".wmv":  "video/x-ms-wmv",
	".flv":  "video/x-flv",
	".ogv":  "video/ogg",
	".3gp":  "video/3gpp",
	".mp3":  "audio/mpeg",
	".flac": "audio/flac",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".opus": "audio/opus",
	".aac":  "audio/aac",
	".wav":  "audio/wav",
	".wma":  "audio/x-ms-wma",
	".srt":  "application/x-subrip",
	".vtt":  "text/vtt",
	".ass":  "text/x-ssa",
	".ssa":  "text/x-ssa",
}

// contentType is the media type of a file by its extension; octet-stream when unknown.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := mediaTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// playable tells whether a file belongs in a playlist: video or audio.
func playable(name string) bool {
	t := contentType(name)
	return strings.HasPrefix(t, "video/") || strings.HasPrefix(t, "audio/")
}
