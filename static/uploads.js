// Placeholder: the tus upload panel is being written.
export function initUploads() {}
