//! Point 10: the source-drop baseline does not creep down push after push.
