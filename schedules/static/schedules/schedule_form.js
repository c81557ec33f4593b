// The schedule form: only the chosen type's field is editable, so a cron expression left
// behind when switching to an interval (or the reverse) is not sent. The server still
// refuses both fields together, with or without this script.
'use strict';
{
    const fieldFor = {cron: 'id_cron_expression', interval: 'id_interval_seconds'};

    function applyType() {
        const checked = document.querySelector('input[name="schedule_type"]:checked');
        if (!checked) {
            return;
        }
        for (const [type, id] of Object.entries(fieldFor)) {
            const input = document.getElementById(id);
            if (input) {
                input.disabled = type !== checked.value;
            }
        }
    }

    window.addEventListener('load', function() {
        for (const radio of document.querySelectorAll('input[name="schedule_type"]')) {
            radio.addEventListener('change', applyType);
        }
        applyType();
    });
}
