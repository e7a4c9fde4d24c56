import django.db.models.deletion
from django.db import migrations, models

from inbox.labels import counters


class Migration(migrations.Migration):
    """SessionLabel carries its session's account, so the list filtered by a rare label reads
    that label's sessions of one account in one index range (inbox.labels.filtering)."""

    dependencies = [
        ("accounts", "0004_audit_event"),
        ("labels", "0001_initial"),
    ]

    operations = [
        # SQLite rebuilds the table to make the column NOT NULL, which its triggers (and those on
        # inbox_session that name it) do not survive: off for the change, then on and recounted.
        migrations.RunPython(counters.uninstall_triggers, counters.install_triggers),
        migrations.AddField(
            model_name="sessionlabel",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.account",
            ),
        ),
        migrations.RunSQL(
            "UPDATE labels_sessionlabel SET account_id = "
            "(SELECT account_id FROM inbox_session WHERE inbox_session.id = session_id)",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="sessionlabel",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.account",
            ),
        ),
        migrations.RemoveIndex(model_name="sessionlabel", name="labels_sessionlabel_label"),
        migrations.AddIndex(
            model_name="sessionlabel",
            index=models.Index(
                fields=["label", "account", "session"], name="labels_sessionlabel_by_label"
            ),
        ),
        migrations.RunPython(counters.install_triggers, counters.uninstall_triggers),
    ]
