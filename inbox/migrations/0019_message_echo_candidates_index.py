"""Sync's echo lookup (echoes.adopt_echoes) reads the few replies composed here that have no
NewMsgId yet, in the page's sessions, from a partial index instead of walking every row without a
NewMsgId (each note and activity line of every account) on every page. Letters synced from the
upstream always have a NewMsgId and never enter it, so storing them costs nothing more."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("inbox", "0018_session_names"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(new_msg_id__isnull=True, send_started_at__isnull=False),
                fields=["session", "send_started_at"],
                name="inbox_message_echo_candidates",
            ),
        ),
    ]
